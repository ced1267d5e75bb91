"""Backends for the TagCache contract suite: in-memory and the host's shared SQLite file (both on
a settable clock), Redis, the master of a Sentinel group (redis+sentinel://) and a Redis Cluster
(redis+cluster://); and the last four behind ResilientCache, as the composition root builds them
(app/wiring/caching.py), so that every contract test also runs through the wrapper.

The Redis side and the fixtures that pick a backend are tests/support/backends.py's: a random key
prefix per test, its keys deleted afterwards; Redis tests fail, never skip, without the server.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from adapters.caching.resilient import CircuitBreaker, ResilientCache
from adapters.local import LocalStore, SqliteTagCache
from adapters.memory.tag_cache import InMemoryTagCache
from adapters.redis.cluster_stores import ClusterTagCache
from adapters.redis.tag_cache import RedisTagCache
from ports.tag_cache import TagCache
from tests.support.backends import *  # noqa: F403  (its fixtures, imported, are this suite's)
from tests.support.backends import SENTINEL_DB, StoreBackend, on_cluster, on_redis
from tests.support.clock import SettableClock
from tests.support.cluster import Cluster
from tests.support.sentinel import Group


@dataclass
class Backend(StoreBackend):
    cache: TagCache
    peer: TagCache  # another handle on the same store: another worker

    def resilient(self, errors: tuple[type[Exception], ...]) -> Backend:
        """Each handle behind a ResilientCache with a breaker of its own (the container's
        defaults: 3 failures, 5 s)."""

        def wrap(cache: TagCache) -> ResilientCache:
            return ResilientCache(cache, errors=errors, breaker=CircuitBreaker(3, 5.0))

        return dataclasses.replace(
            self, name=f"resilient-{self.name}", cache=wrap(self.cache), peer=wrap(self.peer)
        )


@pytest.fixture
def memory_backend() -> Backend:
    clock = SettableClock()
    cache = InMemoryTagCache(clock)
    return Backend("memory", cache, cache.share_store(), clock=clock)


@pytest.fixture
def local_backend(tmp_path) -> Backend:
    """Two stores on one file, as two workers have: each opens its own connections."""
    clock = SettableClock()
    path = tmp_path / "cache.db"
    cache = SqliteTagCache(LocalStore(path), clock=clock)
    return Backend("local", cache, SqliteTagCache(LocalStore(path), clock=clock), clock=clock)


def _on_redis(name: str, url: str | None) -> Iterator[Backend]:
    with on_redis("cache", url) as keys:
        cache, peer = RedisTagCache(keys.client, keys.prefix), RedisTagCache(keys.other, keys.prefix)
        yield Backend(name, cache, peer, on_redis=keys)


@pytest.fixture
def redis_backend() -> Iterator[Backend]:
    yield from _on_redis("redis", None)


@pytest.fixture
def sentinel_backend(sentinel: Group) -> Iterator[Backend]:
    """On the master of the tests' Sentinel group: its clients ask the sentinels where it is."""
    yield from _on_redis("sentinel", sentinel.url(SENTINEL_DB))


@pytest.fixture
def cluster_backend(cluster: Cluster) -> Iterator[Backend]:
    """On the tests' Redis Cluster: the keys in slot groups (adapters.redis.cluster_stores)."""
    with on_cluster("cache", cluster) as keys:
        cache, peer = ClusterTagCache(keys.client, keys.prefix), ClusterTagCache(keys.other, keys.prefix)
        yield Backend("cluster", cache, peer)
