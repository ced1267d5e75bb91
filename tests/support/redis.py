"""The Redis server of the tests: TEST_REDIS_URL (default redis://127.0.0.1:6379/11), a client
that fails the test (never skips) when it is missing, clean-up by key prefix, and a connection
that records what a client sends."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
import redis

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/11")


@dataclass
class Sent:
    """What a Redis client sent: command names, and how many writes to the socket (a pipeline
    is one)."""

    commands: list[str] = field(default_factory=list)
    round_trips: int = 0


@dataclass
class Recorder:
    current: Sent | None = None  # recording while set


_COMMAND = re.compile(rb"\*\d+\r\n\$\d+\r\n([A-Za-z]+)\r\n")


def counting_connection(recorder: Recorder) -> type[redis.Connection]:
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
    """A client that has answered a PING; fails the test (never skips) when Redis is down.
    Replies may take up to 5 s: with the tests on every core and threads switching every
    microsecond (the concurrency contracts), a 1 s reply is load, not an outage."""
    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=1, **kwargs)
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


@contextmanager
def recording(recorder: Recorder | None) -> Iterator[Sent]:
    """Records what a client on `recorder`'s connections sends inside the block."""
    assert recorder is not None, "only the Redis backend sends commands"
    recorder.current = sent = Sent()
    try:
        yield sent
    finally:
        recorder.current = None


def kill_own_connections(client: redis.Redis) -> int:
    """Drop every connection this process holds to `client`'s server (as a server restart or a
    network blip would), but no other process's: the test runs share one Redis, and killing
    every normal client would break the other workers' tests. Linux: the process's sockets are
    found in /proc. How many were killed."""
    kwargs = client.connection_pool.connection_kwargs
    port = int(kwargs.get("port", 6379))
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    killed = 0
    with open("/proc/self/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if inode in inodes and int(remote.split(":")[1], 16) == port:
                address = f"127.0.0.1:{int(local.split(':')[1], 16)}"
                killed += client.client_kill_filter(_type="normal", addr=address, skipme=True)
    return killed
