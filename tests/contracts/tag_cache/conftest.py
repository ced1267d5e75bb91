"""Backends for the TagCache contract suite: in-memory and the host's shared SQLite file (both on
a settable clock), and Redis; and the last two behind ResilientCache, as the composition root
builds them (app/wiring/caching.py), so that every contract test also runs through the wrapper.

Redis is TEST_REDIS_URL (default redis://127.0.0.1:6379/11); each test gets a random key prefix
and its keys are deleted afterwards. Redis tests fail, never skip, when the server is missing.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass

import pytest
import redis

from adapters import redis as redis_store
from adapters.caching.resilient import CircuitBreaker, ResilientCache
from adapters.local import LocalStore, SqliteTagCache
from adapters.local import store as local_store
from adapters.memory.tag_cache import InMemoryTagCache
from adapters.redis.tag_cache import RedisTagCache
from ports.tag_cache import TagCache
from tests.support.clock import SettableClock
from tests.support.redis import Recorder, Sent, counting_connection, delete_prefixed, recording, redis_client


@dataclass
class Backend:
    name: str
    cache: TagCache
    peer: TagCache  # another handle on the same store: another worker
    now: Callable[[], float]
    advance: Callable[[float], None]  # let time pass: moves the clock, or sleeps on Redis
    client: redis.Redis | None = None
    prefix: str = ""
    recorder: Recorder | None = None

    def recording(self) -> AbstractContextManager[Sent]:
        """Records what `cache` sends to Redis inside the block."""
        return recording(self.recorder)


@pytest.fixture
def memory_backend() -> Backend:
    clock = SettableClock()

    def advance(seconds: float) -> None:
        clock.now += seconds

    cache = InMemoryTagCache(clock)
    return Backend("memory", cache, cache.share_store(), clock, advance)


@pytest.fixture
def local_backend(tmp_path) -> Backend:
    """Two stores on one file, as two workers have: each opens its own connections."""
    clock = SettableClock()

    def advance(seconds: float) -> None:
        clock.now += seconds

    path = tmp_path / "cache.db"
    cache = SqliteTagCache(LocalStore(path), clock=clock)
    return Backend("local", cache, SqliteTagCache(LocalStore(path), clock=clock), clock, advance)


@pytest.fixture
def redis_backend() -> Iterator[Backend]:
    recorder = Recorder()
    client = redis_client(connection_class=counting_connection(recorder))
    other = redis_client()
    prefix = f"test:cache:{secrets.token_hex(8)}:"
    try:
        yield Backend(
            "redis",
            RedisTagCache(client, prefix),
            RedisTagCache(other, prefix),
            time.time,
            time.sleep,
            client,
            prefix,
            recorder,
        )
    finally:
        delete_prefixed(other, prefix)
        client.close()
        other.close()


def resilient(inner: Backend, errors: tuple[type[Exception], ...]) -> Backend:
    """`inner`'s handles, each behind a ResilientCache with a breaker of its own (the container's
    defaults: 3 failures, 5 s), as each worker has one."""

    def wrap(cache: TagCache) -> ResilientCache:
        return ResilientCache(cache, errors=errors, breaker=CircuitBreaker(3, 5.0))

    return dataclasses.replace(
        inner, name=f"resilient-{inner.name}", cache=wrap(inner.cache), peer=wrap(inner.peer)
    )


@pytest.fixture
def resilient_local_backend(local_backend: Backend) -> Backend:
    return resilient(local_backend, local_store.ERRORS)


@pytest.fixture
def resilient_redis_backend(redis_backend: Backend) -> Backend:
    return resilient(redis_backend, redis_store.ERRORS)


@pytest.fixture(params=["redis", "resilient-redis"])
def any_redis_backend(request: pytest.FixtureRequest) -> Backend:
    """For what only Redis does (commands sent, the stored layout): the wrapper must add nothing."""
    return request.getfixturevalue(f"{request.param.replace('-', '_')}_backend")


@pytest.fixture(params=["memory", "local", "redis", "resilient-local", "resilient-redis"])
def backend(request: pytest.FixtureRequest) -> Backend:
    return request.getfixturevalue(f"{request.param.replace('-', '_')}_backend")
