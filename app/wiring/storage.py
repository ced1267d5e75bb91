"""The database and the units of work over it: SQL (SQLite or PostgreSQL) or in-memory."""

from __future__ import annotations

from typing import Any

from dependency_injector import containers, providers

from adapters.memory.unit_of_work import InMemoryDatabase, InMemoryUnitOfWork
from adapters.sqlalchemy.engine import make_engine
from adapters.sqlalchemy.unit_of_work import SqlAlchemyUnitOfWork


class Storage(containers.DeclarativeContainer):
    """`config`: the settings (database_url, storage); `events`: the bus the units of work
    publish on, leaving a block that committed (command handlers' and event consumers' alike)."""

    config = providers.Configuration()
    events: providers.Dependency[Any] = providers.Dependency()

    engine = providers.Singleton(make_engine, config.database_url)
    memory = providers.Singleton(InMemoryDatabase)
    uow = providers.Selector(
        config.storage,
        sql=providers.Factory(SqlAlchemyUnitOfWork, engine=engine, bus=events),
        memory=providers.Factory(InMemoryUnitOfWork, db=memory, bus=events),
    )
    # Queries take no write lock (SQLite: DEFERRED; PostgreSQL: READ ONLY transactions).
    read_uow = providers.Selector(
        config.storage,
        sql=providers.Factory(SqlAlchemyUnitOfWork, engine=engine, bus=events, read_only=True),
        memory=providers.Factory(InMemoryUnitOfWork, db=memory, bus=events),
    )
