"""The database and the units of work over it: SQL (SQLite or PostgreSQL) or in-memory."""

from __future__ import annotations

from typing import Any

from dependency_injector import containers, providers

from adapters.memory.unit_of_work import InMemoryDatabase, InMemoryUnitOfWork
from adapters.sqlalchemy.engine import make_engine
from adapters.sqlalchemy.unit_of_work import SqlAlchemyUnitOfWork
from domain.messages import Event


class NoEvents:
    """The bus of the units of work that event consumers use: a consumer's changes raise no
    events of their own, and one that did would be a mistake to find at once."""

    def publish(self, event: Event) -> None:
        raise RuntimeError(f"an event consumer's unit of work recorded {type(event).__name__}")


class Storage(containers.DeclarativeContainer):
    """`config`: the settings (database_url, storage); `events`: the bus the units of work of
    commands publish on after commit."""

    config = providers.Configuration()
    events: providers.Dependency[Any] = providers.Dependency()

    engine = providers.Singleton(make_engine, config.database_url)
    memory = providers.Singleton(InMemoryDatabase)
    _no_events = providers.Singleton(NoEvents)
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
    consumer_uow = providers.Selector(
        config.storage,
        sql=providers.Factory(SqlAlchemyUnitOfWork, engine=engine, bus=_no_events),
        memory=providers.Factory(InMemoryUnitOfWork, db=memory, bus=_no_events),
    )
