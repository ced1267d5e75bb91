"""The composition root: the one place that chooses adapters and binds handlers to them."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from dependency_injector import containers, providers

from adapters.blinker_bus import BlinkerEventBus
from adapters.clock import SystemClock
from adapters.i18n import Catalogs
from adapters.mail.background import BackgroundMailer
from adapters.mail.mailers import LoggingMailer, RecordingMailer, SmtpMailer
from adapters.memory.unit_of_work import InMemoryDatabase, InMemoryUnitOfWork
from adapters.security import Argon2PasswordHasher, SecretsTokenGenerator
from adapters.sqlalchemy.engine import make_engine
from adapters.sqlalchemy.unit_of_work import SqlAlchemyUnitOfWork
from domain.messagebus import MessageBus
from domain.users import handlers as users


def bound(handler: Callable, ports: Mapping[str, providers.Provider]) -> providers.Callable:
    """A provider calling `handler(message, **ports it names)`. Factories among the ports are
    resolved on every call, so each command gets a fresh unit of work."""
    wanted = inspect.signature(handler).parameters
    return providers.Callable(handler, **{name: p for name, p in ports.items() if name in wanted})


def handler_map(handlers: Mapping[type, Callable], ports: Mapping[str, providers.Provider]) -> dict:
    return {message: bound(handler, ports).provider for message, handler in handlers.items()}


def subscriber_map(
    handlers: Mapping[type, list[Callable]], ports: Mapping[str, providers.Provider]
) -> providers.Dict:
    return providers.Dict(
        {event: providers.List(*(bound(h, ports).provider for h in hs)) for event, hs in handlers.items()}
    )


class Container(containers.DeclarativeContainer):
    config = providers.Configuration(strict=True)

    catalogs = providers.Singleton(Catalogs)
    clock = providers.Singleton(SystemClock)
    tokens = providers.Singleton(SecretsTokenGenerator)
    hasher = providers.Singleton(
        Argon2PasswordHasher,
        time_cost=config.argon2.time_cost,
        memory_cost=config.argon2.memory_cost,
        parallelism=config.argon2.parallelism,
    )
    mailer = providers.Selector(
        config.mail.backend,
        log=providers.Singleton(LoggingMailer, catalogs),
        record=providers.Singleton(RecordingMailer, catalogs),
        smtp=providers.Singleton(
            BackgroundMailer,
            providers.Factory(
                SmtpMailer,
                catalogs,
                host=config.mail.smtp.host,
                port=config.mail.smtp.port,
                sender=config.mail.smtp.sender,
                username=config.mail.smtp.username,
                password=config.mail.smtp.password,
                starttls=config.mail.smtp.starttls,
            ),
        ),
    )

    event_bus = providers.Singleton(
        BlinkerEventBus,
        subscribers=subscriber_map(users.EVENT_HANDLERS, {"mailer": mailer, "clock": clock}),
    )

    engine = providers.Singleton(make_engine, config.database_url)
    memory = providers.Singleton(InMemoryDatabase)
    uow = providers.Selector(
        config.storage,
        sql=providers.Factory(SqlAlchemyUnitOfWork, engine=engine, bus=event_bus),
        memory=providers.Factory(InMemoryUnitOfWork, db=memory, bus=event_bus),
    )
    # Queries take no write lock (SQLite: DEFERRED; PostgreSQL: READ ONLY transactions).
    read_uow = providers.Selector(
        config.storage,
        sql=providers.Factory(SqlAlchemyUnitOfWork, engine=engine, bus=event_bus, read_only=True),
        memory=providers.Factory(InMemoryUnitOfWork, db=memory, bus=event_bus),
    )

    _ports: dict[str, Any] = {"hasher": hasher, "tokens": tokens, "clock": clock, "mailer": mailer}
    bus = providers.Singleton(
        MessageBus,
        providers.Dict(
            {
                **handler_map(users.COMMAND_HANDLERS, {**_ports, "uow": uow}),
                **handler_map(users.QUERY_HANDLERS, {"uow": read_uow}),
            }
        ),
    )
    del _ports
