"""The Redis server of the tests: TEST_REDIS_URL (default redis://127.0.0.1:6379/11), a client
that fails the test (never skips) when it is missing, clean-up by key prefix, and a connection
that records what a client sends. The same on a Sentinel group's master (a redis+sentinel:// URL,
tests/support/sentinel.py): the client then asks the sentinels where the master is."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.sentinel import Sentinel, SentinelConnectionPool

from adapters.redis.connection import (
    SentinelConnection,
    cluster_nodes,
    is_cluster,
    is_sentinel,
    sentinel_group,
)

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


def counting_connection(
    recorder: Recorder, base: type[redis.Connection] = redis.Connection
) -> type[redis.Connection]:
    """A connection class that records on `recorder`; `base` is the class it extends (a Sentinel
    client's pool needs a SentinelManagedConnection: see `connection_class`)."""

    class CountingConnection(base):  # type: ignore[valid-type, misc]
        def send_packed_command(self, command, check_health=True):
            if (sent := recorder.current) is not None:
                chunks = [command] if isinstance(command, bytes | str) else command
                data = b"".join(c.encode() if isinstance(c, str) else bytes(c) for c in chunks)
                sent.commands.extend(name.decode().upper() for name in _COMMAND.findall(data))
                sent.round_trips += 1
            return super().send_packed_command(command, check_health)

    return CountingConnection


def connection_class(url: str) -> type[redis.Connection]:
    """The connection class a client on `url` is made of, to extend (counting_connection)."""
    return SentinelConnection if is_sentinel(url) else redis.Connection


def sentinel_client(url: str, **kwargs) -> redis.Redis:
    """A client of the master of the Sentinel group at a redis+sentinel:// URL (credentials and
    TLS are not used by the tests' groups), made like redis_client's."""
    group = sentinel_group(url)
    sentinels = Sentinel(
        list(group.sentinels), sentinel_kwargs={"socket_timeout": 5, "socket_connect_timeout": 1}
    )
    kwargs.setdefault("connection_class", SentinelConnection)  # as the service's (make_client)
    return sentinels.master_for(
        group.service, db=group.db, socket_timeout=5, socket_connect_timeout=1, **kwargs
    )


def redis_client(url: str = REDIS_URL, **kwargs) -> redis.Redis:
    """A client that has answered a PING; fails the test (never skips) when Redis is down.
    Replies may take up to 5 s: with the tests on every core and threads switching every
    microsecond (the concurrency contracts), a 1 s reply is load, not an outage. On a
    redis+sentinel:// URL, a client of the group's master; on redis+cluster://, of the Cluster."""
    if is_sentinel(url):
        client = sentinel_client(url, **kwargs)
    elif is_cluster(url):
        nodes = [ClusterNode(host, port) for host, port in cluster_nodes(url)]
        client = RedisCluster(startup_nodes=nodes, socket_timeout=5, socket_connect_timeout=1, **kwargs)
    else:
        client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=1, **kwargs)
    try:
        client.ping()
        return client
    except redis.RedisError as error:
        problem = str(error)
    client.close()
    if is_sentinel(url) or is_cluster(url):
        pytest.fail(f"the tests' Redis at {url} does not answer ({problem})", pytrace=False)
    pytest.fail(
        f"Redis is not reachable at {url} ({problem}). Start it, or point "
        "TEST_REDIS_URL at one: the cache tests need it and never skip.",
        pytrace=False,
    )


def delete_prefixed(client: redis.Redis, prefix: str, *, each: bool = False) -> None:
    """Delete every key under `prefix`; `each`: one DEL per key (a Cluster node refuses a DEL of
    keys in several slots)."""
    pattern = re.sub(r"([\\*?\[\]])", r"\\\1", prefix) + "*"
    batch = []
    for key in client.scan_iter(match=pattern, count=1000):
        batch.append(key)
        if len(batch) == 1000:
            _delete(client, batch, each)
            batch.clear()
    if batch:
        _delete(client, batch, each)


def _delete(client: redis.Redis, batch: list[bytes], each: bool) -> None:
    if not each:
        client.delete(*batch)
        return
    pipe = client.pipeline(transaction=False)
    for key in batch:
        pipe.delete(key)
    pipe.execute()


@contextmanager
def recording(recorder: Recorder | None) -> Iterator[Sent]:
    """Records what a client on `recorder`'s connections sends inside the block."""
    assert recorder is not None, "only the Redis backend sends commands"
    recorder.current = sent = Sent()
    try:
        yield sent
    finally:
        recorder.current = None


def server_port(client: redis.Redis) -> int:
    """The port of the server `client` talks to: its URL's, or on Sentinel the master's now."""
    pool = client.connection_pool
    if isinstance(pool, SentinelConnectionPool):
        _host, port = pool.get_master_address()
        return int(port)
    return int(pool.connection_kwargs.get("port", 6379))


def kill_own_connections(client: redis.Redis) -> int:
    """Drop every connection this process holds to `client`'s server (as a server restart or a
    network blip would), but no other process's: the test runs share one Redis, and killing
    every normal client would break the other workers' tests. Linux: the process's sockets are
    found in /proc. How many were killed."""
    port = server_port(client)
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
