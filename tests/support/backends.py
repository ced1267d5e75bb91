"""What the contract suites of the stores (tag_cache, session_state) share: a backend on a
settable clock, on the test Redis, on the master of the tests' Sentinel group (the session's
`sentinel` fixture: tests/conftest.py) or on the tests' Redis Cluster (`cluster`), the Redis side
with its recorder and clean-up, and the fixtures that put a backend behind the resilient wrapper
and run every test on each backend.

A suite's conftest subclasses StoreBackend with the handles its tests drive, says how to wrap
them (`resilient`), defines `memory_backend`, `local_backend`, `redis_backend`,
`sentinel_backend` (on `on_redis(..., url=sentinel.url(SENTINEL_DB))`) and `cluster_backend` (on
`on_cluster`), and imports the fixtures below with `*`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import KW_ONLY, dataclass
from typing import Self

import pytest
import redis

from adapters import redis as redis_store
from adapters.local import store as local_store
from adapters.redis.cluster_client import ClusterClient
from tests.support.clock import SettableClock
from tests.support.cluster import Cluster
from tests.support.redis import (
    REDIS_URL,
    Recorder,
    Sent,
    connection_class,
    counting_connection,
    delete_prefixed,
    recording,
    redis_client,
)

# What `from tests.support.backends import *` gives a conftest: the fixtures.
__all__ = [
    "any_redis_backend",
    "backend",
    "resilient_cluster_backend",
    "resilient_local_backend",
    "resilient_redis_backend",
    "resilient_sentinel_backend",
]

BACKENDS = [
    "memory",
    "local",
    "redis",
    "sentinel",
    "cluster",
    "resilient-local",
    "resilient-redis",
    "resilient-sentinel",
    "resilient-cluster",
]
REDIS_BACKENDS = ["redis", "resilient-redis", "sentinel"]
# The Sentinel group's database the contract suites use (the group is the tests' own; the key
# prefixes keep the tests apart all the same).
SENTINEL_DB = 12


@dataclass
class OnRedis:
    """A test's keys on the test Redis: `client` records what it sends on `recorder`; `other`
    is another worker's connection, the one that deletes the keys afterwards."""

    client: redis.Redis
    other: redis.Redis
    prefix: str
    recorder: Recorder


@contextmanager
def on_redis(namespace: str, url: str | None = None) -> Iterator[OnRedis]:
    """Two clients on `url` (None: the test Redis; or a redis+sentinel:// URL: the group's
    master) and a random key prefix under `test:{namespace}:`, whose keys are deleted on the way
    out. Fails the test (never skips) when Redis is missing."""
    url = url or REDIS_URL
    recorder = Recorder()
    client = redis_client(url, connection_class=counting_connection(recorder, connection_class(url)))
    other = redis_client(url)
    prefix = f"test:{namespace}:{secrets.token_hex(8)}:"
    try:
        yield OnRedis(client, other, prefix, recorder)
    finally:
        delete_prefixed(other, prefix)
        client.close()
        other.close()


@dataclass
class OnCluster:
    """A test's keys on the tests' Redis Cluster: `client` and `other`, two clients (two
    workers'), and a random key prefix."""

    client: ClusterClient
    other: ClusterClient
    prefix: str


@contextmanager
def on_cluster(namespace: str, cluster: Cluster) -> Iterator[OnCluster]:
    """Two clients of `cluster` and a random key prefix under `test:{namespace}:`, whose keys are
    deleted from every master on the way out."""
    client, other = (ClusterClient(cluster.url(), socket_timeout=5) for _ in range(2))
    prefix = f"test:{namespace}:{secrets.token_hex(8)}:"
    try:
        yield OnCluster(client, other, prefix)
    finally:
        client.close()
        other.close()
        for port in cluster.ports:
            server = cluster.server(port)
            try:
                delete_prefixed(server, prefix, each=True)
            finally:
                server.close()


@dataclass
class StoreBackend:
    name: str
    _: KW_ONLY
    clock: SettableClock | None = None  # None: real time, as on Redis
    on_redis: OnRedis | None = None

    @property
    def client(self) -> redis.Redis | None:
        return self.on_redis.client if self.on_redis else None

    @property
    def prefix(self) -> str:
        return self.on_redis.prefix if self.on_redis else ""

    def now(self) -> float:
        return time.time() if self.clock is None else self.clock()

    def advance(self, seconds: float) -> None:
        """Lets time pass: moves the clock, or sleeps on Redis."""
        if self.clock is None:
            time.sleep(seconds)
        else:
            self.clock.now += seconds

    def recording(self) -> AbstractContextManager[Sent]:
        """Records what the store under test sends to Redis inside the block."""
        return recording(self.on_redis.recorder if self.on_redis else None)

    def resilient(self, errors: tuple[type[Exception], ...]) -> Self:
        """This backend's handles, each behind the resilient wrapper with a breaker of its own,
        as each worker has one; `errors` are the ones the wrapper meets as an outage."""
        raise NotImplementedError


def _named(request: pytest.FixtureRequest) -> StoreBackend:
    return request.getfixturevalue(f"{request.param.replace('-', '_')}_backend")


@pytest.fixture
def resilient_local_backend(local_backend: StoreBackend) -> StoreBackend:
    return local_backend.resilient(local_store.ERRORS)


@pytest.fixture
def resilient_redis_backend(redis_backend: StoreBackend) -> StoreBackend:
    return redis_backend.resilient(redis_store.ERRORS)


@pytest.fixture
def resilient_sentinel_backend(sentinel_backend: StoreBackend) -> StoreBackend:
    return sentinel_backend.resilient(redis_store.ERRORS)


@pytest.fixture
def resilient_cluster_backend(cluster_backend: StoreBackend) -> StoreBackend:
    return cluster_backend.resilient(redis_store.ERRORS)


@pytest.fixture(params=REDIS_BACKENDS)
def any_redis_backend(request: pytest.FixtureRequest) -> StoreBackend:
    """For what only Redis does (commands sent, the stored layout): the wrapper must add nothing,
    and neither must a Sentinel group's master."""
    return _named(request)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> StoreBackend:
    return _named(request)
