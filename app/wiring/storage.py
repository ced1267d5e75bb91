"""The database and the units of work over it: SQL (SQLite or PostgreSQL) or in-memory."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any

from dependency_injector import containers, providers

from adapters.memory.unit_of_work import InMemoryDatabase, InMemoryUnitOfWork
from adapters.sqlalchemy.engine import make_engine
from adapters.sqlalchemy.outbox import Inbox, Outbox
from adapters.sqlalchemy.unit_of_work import SqlAlchemyUnitOfWork, shared_reads
from app.wiring.events import envelope
from domain.messages import Envelope, Event


def _envelopes(durable: bool) -> Callable[[Event], Envelope] | None:
    """What the units of work write to the outbox: with durable events, every event's envelope."""
    return envelope if durable else None


class Storage(containers.DeclarativeContainer):
    """`config`: the settings (database_url, storage); `events`: the bus the units of work
    publish on, leaving a block that committed (command handlers' and event consumers' alike)."""

    config = providers.Configuration()
    events: providers.Dependency[Any] = providers.Dependency()

    engine = providers.Singleton(make_engine, config.database_url)
    memory = providers.Singleton(InMemoryDatabase)
    outbox = providers.Singleton(Outbox, engine)
    inbox = providers.Singleton(Inbox, engine)
    uow = providers.Selector(
        config.storage,
        sql=providers.Factory(
            SqlAlchemyUnitOfWork,
            engine=engine,
            bus=events,
            envelopes=providers.Callable(_envelopes, config.events.durable),
        ),
        memory=providers.Factory(InMemoryUnitOfWork, db=memory, bus=events),
    )
    # Queries take no write lock (SQLite: DEFERRED transactions; PostgreSQL: autocommit).
    read_uow = providers.Selector(
        config.storage,
        sql=providers.Factory(SqlAlchemyUnitOfWork, engine=engine, bus=events, read_only=True),
        memory=providers.Factory(InMemoryUnitOfWork, db=memory, bus=events),
    )
    # A block whose read-only units of work share one pooled connection, each with its own
    # transaction (the HTTP hot path's request: its session check and its user); in memory
    # there is nothing to share.
    shared_reads = providers.Selector(
        config.storage,
        sql=providers.Singleton(functools.partial, shared_reads, engine),
        memory=providers.Object(contextlib.nullcontext),
    )
