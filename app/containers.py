"""The composition root: the one place that chooses adapters and binds handlers to them."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import redis
from dependency_injector import containers, providers

from adapters.blinker_bus import BlinkerEventBus
from adapters.cache import users as user_caches
from adapters.cache.memory import InMemoryTagCache
from adapters.cache.read_through import ReadThrough
from adapters.cache.redis import RedisTagCache, make_client
from adapters.cache.resilient import ResilientCache
from adapters.clock import SystemClock
from adapters.i18n import Catalogs
from adapters.mail.background import BackgroundMailer
from adapters.mail.mailers import LoggingMailer, RecordingMailer, SmtpMailer
from adapters.memory.unit_of_work import InMemoryDatabase, InMemoryUnitOfWork
from adapters.security import Argon2PasswordHasher, SecretsTokenGenerator
from adapters.sqlalchemy.engine import make_engine
from adapters.sqlalchemy.unit_of_work import SqlAlchemyUnitOfWork
from app.api.representation import RepresentationCodec
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
    ports: Mapping[str, providers.Provider], *handler_maps: Mapping[type, list[Callable]]
) -> providers.Dict:
    merged: dict[type, list[Callable]] = {}
    for handlers in handler_maps:
        for event, subscribers in handlers.items():
            merged.setdefault(event, []).extend(subscribers)
    return providers.Dict(
        {event: providers.List(*(bound(h, ports).provider for h in hs)) for event, hs in merged.items()}
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

    # The read cache: Redis (shared by every worker and host), in-process (one worker with
    # threads: the embedded default), or none.
    cache = providers.Selector(
        config.cache.backend,
        redis=providers.Singleton(
            ResilientCache,
            providers.Singleton(
                RedisTagCache,
                providers.Singleton(
                    make_client, config.cache.url, socket_timeout=config.cache.socket_timeout
                ),
                prefix=config.cache.prefix,
            ),
            errors=(redis.RedisError,),
            fail_max=config.cache.breaker_failures,
            reset_timeout=config.cache.breaker_reset,
        ),
        memory=providers.Singleton(InMemoryTagCache),
        none=providers.Object(None),
    )
    reads = providers.Singleton(ReadThrough, cache)

    _subscriber_ports = {"mailer": mailer, "clock": clock, "cache": cache}
    _invalidating = subscriber_map(_subscriber_ports, users.EVENT_HANDLERS, user_caches.EVENT_HANDLERS)
    event_bus = providers.Singleton(
        BlinkerEventBus,
        subscribers=providers.Selector(
            config.cache.backend,
            redis=_invalidating,
            memory=_invalidating,
            none=subscriber_map(_subscriber_ports, users.EVENT_HANDLERS),
        ),
    )
    del _subscriber_ports, _invalidating

    engine = providers.Singleton(make_engine, config.database_url)
    memory = providers.Singleton(InMemoryDatabase)
    uow = providers.Selector(
        config.storage,
        sql=providers.Factory(SqlAlchemyUnitOfWork, engine=engine, bus=event_bus),
        memory=providers.Factory(InMemoryUnitOfWork, db=memory, bus=event_bus),
    )
    # Queries take no write lock (SQLite: DEFERRED; PostgreSQL: READ ONLY transactions).
    database_read_uow = providers.Selector(
        config.storage,
        sql=providers.Factory(SqlAlchemyUnitOfWork, engine=engine, bus=event_bus, read_only=True),
        memory=providers.Factory(InMemoryUnitOfWork, db=memory, bus=event_bus),
    )
    _cached_read_uow = providers.Factory(
        user_caches.CachedReadUnitOfWork, database_read_uow, reads, providers.Singleton(RepresentationCodec)
    )
    read_uow = providers.Selector(
        config.cache.backend, redis=_cached_read_uow, memory=_cached_read_uow, none=database_read_uow
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
