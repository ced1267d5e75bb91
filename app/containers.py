# Over 200 lines: the one composition root; the split into sub-containers by concern is pending.
"""The composition root: the one place that chooses adapters and binds handlers to them."""

from __future__ import annotations

import inspect
import sqlite3
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

import redis
from dependency_injector import containers, providers

from adapters.blinker_bus import BlinkerEventBus
from adapters.caching import users as user_caches
from adapters.caching.no_state import NoUserStateStore
from adapters.caching.owned_state import OwnedGroups
from adapters.caching.read_through import ReadThrough
from adapters.caching.resilient import CircuitBreaker, ResilientCache
from adapters.caching.resilient_state import ResilientUserStateStore
from adapters.clock import SystemClock
from adapters.i18n import Catalogs
from adapters.jwt_tokens import JwtAccessTokens
from adapters.local import LocalStore, SqliteTagCache, SqliteUserStateStore
from adapters.local.throttle import SqliteLimitsStorage
from adapters.mail.background import BackgroundMailer
from adapters.mail.mailers import LoggingMailer, RecordingMailer, SmtpMailer
from adapters.memory.session_state import InMemoryUserStateStore
from adapters.memory.tag_cache import InMemoryTagCache
from adapters.memory.unit_of_work import InMemoryDatabase, InMemoryUnitOfWork
from adapters.redis.session_state import RedisUserStateStore
from adapters.redis.tag_cache import RedisTagCache, make_client
from adapters.security import Argon2PasswordHasher, SecretsTokenGenerator
from adapters.sqlalchemy.engine import make_engine
from adapters.sqlalchemy.unit_of_work import SqlAlchemyUnitOfWork
from adapters.throttle import LimitsLoginThrottle, login_throttle
from app.api.representation import RepresentationCodec
from app.http.payments import PaymentCallbacks
from application.auth import handlers as auth
from application.messagebus import MessageBus
from application.subscriptions import handlers as subscriptions
from application.users import handlers as users
from domain.auth.model import Lifetimes
from domain.messages import Event
from domain.session_state.model import owned_groups
from domain.subscriptions.plans import Plan, Plans


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
        {
            event: providers.List(*(bound(h, consumer_ports(h, ports)).provider for h in hs))
            for event, hs in merged.items()
        }
    )


def consumer_ports(consumer: Callable, ports: Mapping[str, providers.Provider]) -> dict:
    """The ports as this event consumer gets them: the state store limited to the groups it
    owns (none, for most: they may only read it)."""
    name = f"{consumer.__module__}.{consumer.__qualname__}"
    guarded = providers.Factory(OwnedGroups, ports["states"], owned_groups(consumer), name)
    return {**ports, "states": guarded}


def build_plans(config: Mapping[str, Mapping[str, Any]]) -> Plans:
    return Plans(
        {
            name: Plan(
                name,
                timedelta(days=plan["period_days"]),
                plan["price"],
                plan["currency"],
                frozenset(plan["features"]),
            )
            for name, plan in config.items()
        }
    )


class NoEvents:
    """The bus of the units of work that event consumers use: a consumer's changes raise no
    events of their own, and one that did would be a mistake to find at once."""

    def publish(self, event: Event) -> None:
        raise RuntimeError(f"an event consumer's unit of work recorded {type(event).__name__}")


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


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

    # Redis, shared by the read cache, the session state and login throttling.
    redis_client = providers.Singleton(
        make_client, config.cache.url, socket_timeout=config.cache.socket_timeout
    )
    # One circuit breaker per Redis server: every user of it stops waiting on it together.
    _breaker = {
        "errors": (redis.RedisError,),
        "breaker": providers.Singleton(
            CircuitBreaker, config.cache.breaker_failures, config.cache.breaker_reset
        ),
    }
    # The embedded default's store: one SQLite file shared by every process on the host. Its
    # failures (a lock held too long, a full disk) are met like a Redis outage's.
    local_store = providers.Singleton(LocalStore, config.cache.path, owner=config.cache.owner)
    _local_breaker = {
        "errors": (sqlite3.Error, OSError),
        "breaker": providers.Singleton(
            CircuitBreaker, config.cache.breaker_failures, config.cache.breaker_reset
        ),
    }
    # The read cache: Redis (shared by every worker and host), the host's shared file (every
    # worker on one host: the embedded default), in-process (tests, one process), or none.
    cache = providers.Selector(
        config.cache.backend,
        redis=providers.Singleton(
            ResilientCache,
            providers.Singleton(RedisTagCache, redis_client, prefix=config.cache.prefix),
            **_breaker,
        ),
        local=providers.Singleton(
            ResilientCache, providers.Singleton(SqliteTagCache, local_store), **_local_breaker
        ),
        memory=providers.Singleton(InMemoryTagCache),
        none=providers.Object(None),
    )
    # Session state (UserState): the same choice. With no cache every request reads the database.
    states = providers.Selector(
        config.cache.backend,
        redis=providers.Singleton(
            ResilientUserStateStore,
            providers.Singleton(RedisUserStateStore, redis_client, prefix=config.cache.prefix),
            **_breaker,
        ),
        local=providers.Singleton(
            ResilientUserStateStore, providers.Singleton(SqliteUserStateStore, local_store), **_local_breaker
        ),
        memory=providers.Singleton(InMemoryUserStateStore),
        none=providers.Singleton(NoUserStateStore),
    )
    del _breaker, _local_breaker
    _process_throttle = providers.Singleton(login_throttle, "memory", config.cache.prefix)
    throttle = providers.Selector(
        config.cache.backend,
        redis=providers.Singleton(login_throttle, config.cache.url, config.cache.prefix),
        local=providers.Singleton(LimitsLoginThrottle, providers.Singleton(SqliteLimitsStorage, local_store)),
        memory=_process_throttle,
        none=_process_throttle,
    )
    lifetimes = providers.Singleton(
        Lifetimes,
        access=providers.Callable(_seconds, config.auth.access_ttl),
        refresh=providers.Callable(_seconds, config.auth.refresh_ttl),
    )
    access = providers.Singleton(
        JwtAccessTokens, config.auth.secret, providers.Callable(_seconds, config.auth.access_ttl)
    )
    reads = providers.Singleton(ReadThrough, cache)
    plans = providers.Singleton(build_plans, config.subscriptions.plans)
    payment_callbacks = providers.Singleton(PaymentCallbacks, config.subscriptions.webhook_secret)

    engine = providers.Singleton(make_engine, config.database_url)
    memory = providers.Singleton(InMemoryDatabase)
    _no_events = providers.Singleton(NoEvents)
    consumer_uow = providers.Selector(
        config.storage,
        sql=providers.Factory(SqlAlchemyUnitOfWork, engine=engine, bus=_no_events),
        memory=providers.Factory(InMemoryUnitOfWork, db=memory, bus=_no_events),
    )

    # Its subscribers get the bus too (a consumer may publish what its own change caused), so
    # they are added once it is declared.
    event_bus = providers.Singleton(BlinkerEventBus)
    _subscriber_ports = {
        "mailer": mailer,
        "clock": clock,
        "cache": cache,
        "states": states,
        "plans": plans,
        "events": event_bus,
        "uow": consumer_uow,
    }
    _handlers = (users.EVENT_HANDLERS, auth.EVENT_HANDLERS, subscriptions.EVENT_HANDLERS)
    _invalidating = subscriber_map(_subscriber_ports, *_handlers, user_caches.EVENT_HANDLERS)
    event_bus.add_kwargs(
        subscribers=providers.Selector(
            config.cache.backend,
            redis=_invalidating,
            local=_invalidating,
            memory=_invalidating,
            none=subscriber_map(_subscriber_ports, *_handlers),
        ),
    )
    del _subscriber_ports, _invalidating, _handlers

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
        config.cache.backend,
        redis=_cached_read_uow,
        local=_cached_read_uow,
        memory=_cached_read_uow,
        none=database_read_uow,
    )

    _ports: dict[str, Any] = {
        "hasher": hasher,
        "tokens": tokens,
        "clock": clock,
        "mailer": mailer,
        "states": states,
        "access": access,
        "throttle": throttle,
        "events": event_bus,
        "lifetimes": lifetimes,
        "plans": plans,
    }
    bus = providers.Singleton(
        MessageBus,
        providers.Dict(
            {
                **handler_map(users.COMMAND_HANDLERS, {**_ports, "uow": uow}),
                **handler_map(auth.COMMAND_HANDLERS, {**_ports, "uow": uow}),
                **handler_map(subscriptions.COMMAND_HANDLERS, {**_ports, "uow": uow}),
                **handler_map(users.QUERY_HANDLERS, {"uow": read_uow}),
                # Authentication and the activity log read the database itself, not the read cache.
                **handler_map(auth.QUERY_HANDLERS, {**_ports, "uow": database_read_uow}),
                **handler_map(subscriptions.QUERY_HANDLERS, {**_ports, "uow": database_read_uow}),
            }
        ),
    )
    del _ports
