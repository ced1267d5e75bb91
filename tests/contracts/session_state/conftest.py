"""Backends for the UserStateStore contract suite: in-memory and the host's shared SQLite file
(both on a settable clock), Redis, the master of a Sentinel group (redis+sentinel://) and a Redis
Cluster (redis+cluster://); and the last four behind ResilientUserStateStore, as the composition
root builds them (app/wiring/caching.py), so that every contract test also runs through the
wrapper.

The Redis side and the fixtures that pick a backend are tests/support/backends.py's: a random key
prefix per test, its keys deleted afterwards; Redis tests fail, never skip, without the server.
On Redis time really passes, so TTL tests build their stores with TTLs of a fraction of a second.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC
from uuid import UUID, uuid4

import pytest
from faker import Faker

from adapters.caching.resilient import CircuitBreaker
from adapters.caching.resilient_state import ResilientUserStateStore
from adapters.local import LocalStore, SqliteUserStateStore
from adapters.memory.session_state import InMemoryUserStateStore
from adapters.redis.cluster_stores import ClusterUserStateStore
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
from tests.support.backends import *  # noqa: F403  (its fixtures, imported, are this suite's)
from tests.support.backends import SENTINEL_DB, StoreBackend, on_cluster, on_redis
from tests.support.clock import SettableClock
from tests.support.cluster import Cluster
from tests.support.sentinel import Group


@dataclass
class Backend(StoreBackend):
    store: UserStateStore
    # Another store on the same data, with other TTLs (seconds): another worker.
    make: Callable[..., UserStateStore]

    def resilient(self, errors: tuple[type[Exception], ...]) -> Backend:
        """Each store behind a ResilientUserStateStore with a breaker of its own (the container's
        defaults: 3 failures, 5 s)."""

        def wrap(store: UserStateStore) -> ResilientUserStateStore:
            return ResilientUserStateStore(store, errors=errors, breaker=CircuitBreaker(3, 5.0))

        def make(**ttls: float) -> ResilientUserStateStore:
            return wrap(self.make(**ttls))

        return dataclasses.replace(self, name=f"resilient-{self.name}", store=wrap(self.store), make=make)


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
    store = InMemoryUserStateStore(clock)
    return Backend("memory", store, store.share_store, clock=clock)


@pytest.fixture
def local_backend(tmp_path) -> Backend:
    """Stores on one file, each with its own connections, as workers have."""
    clock = SettableClock()
    path = tmp_path / "state.db"

    def make(**ttls: float) -> SqliteUserStateStore:
        return SqliteUserStateStore(LocalStore(path), clock=clock, **ttls)

    return Backend("local", make(), make, clock=clock)


def _on_redis(name: str, url: str | None) -> Iterator[Backend]:
    with on_redis("state", url) as keys:

        def make(**ttls: float) -> RedisUserStateStore:
            return RedisUserStateStore(keys.other, keys.prefix, **ttls)

        yield Backend(name, RedisUserStateStore(keys.client, keys.prefix), make, on_redis=keys)


@pytest.fixture
def redis_backend() -> Iterator[Backend]:
    yield from _on_redis("redis", None)


@pytest.fixture
def sentinel_backend(sentinel: Group) -> Iterator[Backend]:
    """On the master of the tests' Sentinel group: its clients ask the sentinels where it is."""
    yield from _on_redis("sentinel", sentinel.url(SENTINEL_DB))


@pytest.fixture
def cluster_backend(cluster: Cluster) -> Iterator[Backend]:
    """On the tests' Redis Cluster: the state in its user's slot group (adapters.redis.cluster_stores)."""
    with on_cluster("state", cluster) as keys:

        def make(**ttls: float) -> ClusterUserStateStore:
            return ClusterUserStateStore(keys.other, keys.prefix, **ttls)

        yield Backend("cluster", ClusterUserStateStore(keys.client, keys.prefix), make)
