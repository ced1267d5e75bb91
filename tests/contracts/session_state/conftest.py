"""Backends for the UserStateStore contract suite: in-memory and the host's shared SQLite file
(both on a settable clock), and Redis; and the last two behind ResilientUserStateStore, as the
composition root builds them (app/wiring/caching.py), so that every contract test also runs
through the wrapper.

Redis is TEST_REDIS_URL (default redis://127.0.0.1:6379/11); each test gets a random key prefix
and its keys are deleted afterwards. Redis tests fail, never skip, when the server is missing.
On Redis time really passes, so TTL tests build their stores with TTLs of a fraction of a second.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC
from uuid import UUID, uuid4

import pytest
import redis
from faker import Faker

from adapters import redis as redis_store
from adapters.caching.resilient import CircuitBreaker
from adapters.caching.resilient_state import ResilientUserStateStore
from adapters.local import LocalStore, SqliteUserStateStore
from adapters.local import store as local_store
from adapters.memory.session_state import InMemoryUserStateStore
from adapters.redis.session_state import RedisUserStateStore
from domain.session_state.model import (
    AccountStatus,
    Identity,
    LiveSession,
    Roles,
    Sessions,
    SubscriptionSummary,
    UserState,
    Versioned,
)
from ports.session_state import UserStateStore
from tests.support.clock import SettableClock
from tests.support.redis import Recorder, Sent, counting_connection, delete_prefixed, recording, redis_client


@dataclass
class Backend:
    name: str
    store: UserStateStore
    # Another store on the same data, with other TTLs (seconds): another worker.
    make: Callable[..., UserStateStore]
    advance: Callable[[float], None]  # let time pass: moves the clock, or sleeps on Redis
    client: redis.Redis | None = None
    prefix: str = ""
    recorder: Recorder | None = None

    def recording(self) -> AbstractContextManager[Sent]:
        """Records what `store` sends to Redis inside the block."""
        return recording(self.recorder)


def full_state(faker: Faker, user_id: UUID | None = None, version: int = 1) -> UserState:
    """Every group, each at `version`, with values that exercise the codec."""

    def moment():
        return faker.date_time_between("-1y", "+1y", tzinfo=UTC)

    live = {uuid4(): LiveSession(faker.sha256(), moment()) for _ in range(2)}
    return UserState(
        user_id or uuid4(),
        identity=Versioned(version, Identity(faker.email(), AccountStatus.ACTIVE)),
        sessions=Versioned(version, Sessions(live, moment())),
        roles=Versioned(version, Roles(frozenset({"admin", "user", "élève"}))),
        subscription=Versioned(version, SubscriptionSummary("pro", "active", moment())),
    )


@pytest.fixture
def memory_backend() -> Backend:
    clock = SettableClock()

    def advance(seconds: float) -> None:
        clock.now += seconds

    store = InMemoryUserStateStore(clock)
    return Backend("memory", store, store.share_store, advance)


@pytest.fixture
def local_backend(tmp_path) -> Backend:
    """Stores on one file, each with its own connections, as workers have."""
    clock = SettableClock()

    def advance(seconds: float) -> None:
        clock.now += seconds

    path = tmp_path / "state.db"

    def make(**ttls: float) -> SqliteUserStateStore:
        return SqliteUserStateStore(LocalStore(path), clock=clock, **ttls)

    return Backend("local", make(), make, advance)


@pytest.fixture
def redis_backend() -> Iterator[Backend]:
    recorder = Recorder()
    client = redis_client(connection_class=counting_connection(recorder))
    other = redis_client()
    prefix = f"test:state:{secrets.token_hex(8)}:"

    def make(**ttls: float) -> RedisUserStateStore:
        return RedisUserStateStore(other, prefix, **ttls)

    try:
        store = RedisUserStateStore(client, prefix)
        yield Backend("redis", store, make, time.sleep, client, prefix, recorder)
    finally:
        delete_prefixed(other, prefix)
        client.close()
        other.close()


def resilient(inner: Backend, errors: tuple[type[Exception], ...]) -> Backend:
    """`inner`'s stores, each behind a ResilientUserStateStore with a breaker of its own (the
    container's defaults: 3 failures, 5 s), as each worker has one."""

    def wrap(store: UserStateStore) -> ResilientUserStateStore:
        return ResilientUserStateStore(store, errors=errors, breaker=CircuitBreaker(3, 5.0))

    def make(**ttls: float) -> ResilientUserStateStore:
        return wrap(inner.make(**ttls))

    return dataclasses.replace(inner, name=f"resilient-{inner.name}", store=wrap(inner.store), make=make)


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
