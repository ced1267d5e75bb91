"""The read cache, the session state and the login throttle, on one store: Redis (shared by
every worker and host), the host's local store (every worker on one host: the embedded
default), in-process (tests, one process), or none."""

from __future__ import annotations

from dependency_injector import containers, providers

from adapters import redis as redis_store
from adapters.caching.no_state import NoUserStateStore
from adapters.caching.read_ahead import ReadAhead
from adapters.caching.read_through import ReadThrough
from adapters.caching.resilient import CircuitBreaker, ResilientCache
from adapters.caching.resilient_state import ResilientUserStateStore
from adapters.local import LocalStore, SqliteTagCache, SqliteUserStateStore
from adapters.local import store as local_store_module
from adapters.local.throttle import SqliteLimitsStorage
from adapters.memory.session_state import InMemoryUserStateStore
from adapters.memory.tag_cache import InMemoryTagCache
from adapters.redis import stores as redis_stores
from adapters.throttle import LimitsLoginThrottle, login_throttle


def _read_cache(backend: str) -> str:
    """ "on" unless the cache is switched off (CACHE_URL=none): what the read paths choose by."""
    return "off" if backend == "none" else "on"


class Caching(containers.DeclarativeContainer):
    """`config`: the cache settings (backend, url, prefix, path, owner, timeouts, breaker);
    `durable_events`: whether invalidations are durable events too (then a failed one is the
    worker's to retry, see ResilientCache)."""

    config = providers.Configuration()
    durable_events = providers.Configuration()
    registrations = providers.Configuration()  # REGISTRATIONS_PER_CLIENT, REGISTRATIONS
    read_cache = providers.Callable(_read_cache, config.backend)

    redis_client = providers.Singleton(redis_stores.client, config.url, socket_timeout=config.socket_timeout)
    # The hot path's read ahead: on Redis, a request's session state and cache entry in one call.
    read_ahead = providers.Singleton(ReadAhead)
    _redis_cache = providers.Singleton(redis_stores.tag_cache, redis_client, config.prefix, ahead=read_ahead)
    # One circuit breaker per server (Redis, or the local store's file), shared by the read cache
    # and the session-state store on it: every user of it stops waiting on it together.
    _redis = {
        "errors": redis_store.ERRORS,
        "breaker": providers.Singleton(CircuitBreaker, config.breaker_failures, config.breaker_reset),
    }
    # The embedded default's store: one SQLite file shared by every process on the host. Its
    # failures (a lock held too long, a full disk) are met like a Redis outage's.
    local_store = providers.Singleton(LocalStore, config.path, owner=config.owner)
    _local = {
        "errors": local_store_module.ERRORS,
        "breaker": providers.Singleton(CircuitBreaker, config.breaker_failures, config.breaker_reset),
    }
    cache = providers.Selector(
        config.backend,
        redis=providers.Singleton(
            ResilientCache,
            _redis_cache,
            durable=durable_events,
            **_redis,
        ),
        local=providers.Singleton(
            ResilientCache,
            providers.Singleton(SqliteTagCache, local_store),
            durable=durable_events,
            **_local,
        ),
        memory=providers.Singleton(InMemoryTagCache),
        none=providers.Object(None),
    )
    # Session state (UserState): the same choice. With no cache every request reads the database.
    states = providers.Selector(
        config.backend,
        redis=providers.Singleton(
            ResilientUserStateStore,
            providers.Singleton(
                redis_stores.state_store, redis_client, config.prefix, read_along=_redis_cache
            ),
            **_redis,
        ),
        local=providers.Singleton(
            ResilientUserStateStore, providers.Singleton(SqliteUserStateStore, local_store), **_local
        ),
        memory=providers.Singleton(InMemoryUserStateStore),
        none=providers.Singleton(NoUserStateStore),
    )
    del _redis, _local
    _rates = {"registrations_per_client": registrations.per_client, "registrations": registrations.total}
    _process_throttle = providers.Singleton(login_throttle, "memory", config.prefix, **_rates)
    throttle = providers.Selector(
        config.backend,
        redis=providers.Singleton(login_throttle, config.url, config.prefix, **_rates),
        local=providers.Singleton(
            LimitsLoginThrottle, providers.Singleton(SqliteLimitsStorage, local_store), **_rates
        ),
        memory=_process_throttle,
        none=_process_throttle,
    )
    del _rates
    reads = providers.Singleton(ReadThrough, cache)
