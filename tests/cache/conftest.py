"""Backends for the TagCache contract suite: in-memory and the host's shared SQLite file (both on
a settable clock), and Redis.

Redis is TEST_REDIS_URL (default redis://127.0.0.1:6379/11); each test gets a random key prefix
and its keys are deleted afterwards. Redis tests fail, never skip, when the server is missing.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
import redis

from adapters.cache import InMemoryTagCache, RedisTagCache
from adapters.local import LocalStore, SqliteTagCache
from ports.cache import TagCache

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/11")


class SettableClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Sent:
    """What a Redis client sent: command names, and how many writes to the socket (a pipeline
    is one)."""

    commands: list[str] = field(default_factory=list)
    round_trips: int = 0


@dataclass
class Recorder:
    current: Sent | None = None  # recording while set


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

    @contextmanager
    def recording(self) -> Iterator[Sent]:
        """Records what `cache` sends to Redis inside the block."""
        assert self.recorder is not None, "only the Redis backend sends commands"
        self.recorder.current = sent = Sent()
        try:
            yield sent
        finally:
            self.recorder.current = None


_COMMAND = re.compile(rb"\*\d+\r\n\$\d+\r\n([A-Za-z]+)\r\n")


def _counting_connection(recorder: Recorder) -> type[redis.Connection]:
    class CountingConnection(redis.Connection):
        def send_packed_command(self, command, check_health=True):
            if (sent := recorder.current) is not None:
                chunks = [command] if isinstance(command, bytes | str) else command
                data = b"".join(c.encode() if isinstance(c, str) else bytes(c) for c in chunks)
                sent.commands.extend(name.decode().upper() for name in _COMMAND.findall(data))
                sent.round_trips += 1
            return super().send_packed_command(command, check_health)

    return CountingConnection


def redis_client(url: str = REDIS_URL, **kwargs) -> redis.Redis:
    """A client that has answered a PING; fails the test (never skips) when Redis is down."""
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1, **kwargs)
    try:
        client.ping()
        return client
    except redis.RedisError as error:
        problem = str(error)
    client.close()
    pytest.fail(
        f"Redis is not reachable at {url} ({problem}). Start it, or point "
        "TEST_REDIS_URL at one: the cache tests need it and never skip.",
        pytrace=False,
    )


def delete_prefixed(client: redis.Redis, prefix: str) -> None:
    pattern = re.sub(r"([\\*?\[\]])", r"\\\1", prefix) + "*"
    batch = []
    for key in client.scan_iter(match=pattern, count=1000):
        batch.append(key)
        if len(batch) == 1000:
            client.delete(*batch)
            batch.clear()
    if batch:
        client.delete(*batch)


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
    client = redis_client(connection_class=_counting_connection(recorder))
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


@pytest.fixture(params=["memory", "local", "redis"])
def backend(request: pytest.FixtureRequest) -> Backend:
    return request.getfixturevalue(f"{request.param}_backend")
