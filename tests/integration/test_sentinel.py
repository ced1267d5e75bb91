# Over 200 lines: one scenario end to end, its waits and the checks of what each server holds belong together.
"""The service on the master of a Sentinel group (CACHE_URL=redis+sentinel://...), end to end over
HTTP: the read cache and the session state live on the master and reach its replica; after a
failover (SENTINEL FAILOVER), and after the master is killed outright, the same app, never
restarted, goes on against the new master with a bounded number of failed cache operations right
after the switch and never a wrong answer, then or once the demoted master has rejoined as a
replica.

The failovers run on a group of the test's own (tests/support/sentinel.py); the session's group
(the `sentinel` fixture) is only read and written under a key prefix of the test's. The database
is the in-memory one (TEST_ENV's). Every wait has a deadline. Fails, never skips, without
redis-server.
"""

from __future__ import annotations

import json
import secrets
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import redis
from flask.testing import FlaskClient
from prometheus_client import REGISTRY
from redis.sentinel import SentinelConnectionPool

from adapters.caching import keys
from adapters.redis.connection import make_client
from adapters.redis.tag_cache import RedisTagCache, thread_connection
from app.factory import create_app
from app.http.user_representation import representation
from tests import factories
from tests.api.conftest import act_as, login
from tests.settings import TEST_ENV
from tests.support.redis import delete_prefixed, redis_client
from tests.support.sentinel import SERVICE, Group, sentinel_group
from tests.support.servers import linked_to, wait_until

DB = 15  # the service's database in the Sentinel groups
SOCKET_TIMEOUT = 0.25
BREAKER_RESET = 0.5  # the breaker a switch may open closes again soon
SWITCH = 20.0  # seconds for the sentinels to name a new master
REJOIN = 30.0  # seconds for a demoted master to be a replica again, its link to the new one up
SETTLE = 5.0  # seconds for the app to be served from the new master (a cache hit) after a switch
# Cache and session-state operations that may fail (each answered from the database) right after
# a switch: a few per connection the switch drops, and the breaker's probes; GETs before a hit.
FAILED_ATTEMPTS = 12
# Those, and a write's repair tries while it waits for them to land (app.acknowledgement: up to
# 8 a store in its second).
FAILED_CALLS = 30


@contextmanager
def service(group: Group, prefix: str, clean_up: bool = True) -> Iterator[FlaskClient]:
    """A test client of the app on the group's master (db DB, under `prefix`); the prefix's keys
    are deleted afterwards (from whichever server is the master then) unless the group goes
    with the test."""
    app = create_app(
        {
            **TEST_ENV,
            "CACHE_URL": group.url(DB),
            "CACHE_PREFIX": prefix,
            "CACHE_SOCKET_TIMEOUT": str(SOCKET_TIMEOUT),
            "CACHE_BREAKER_RESET": str(BREAKER_RESET),
        }
    )
    try:
        yield app.test_client()
    finally:
        if clean_up:
            _delete(group, prefix)


def _delete(group: Group, prefix: str) -> None:
    cleaner = redis_client(group.url(DB))
    try:
        delete_prefixed(cleaner, prefix)
    finally:
        cleaner.close()


def register(client: FlaskClient, faker: Any) -> tuple[str, dict]:
    """A new user, logged in: the client acts as them. Its URL, and its JSON with `password`."""
    data = factories.registration(faker)
    response = client.post("/api/users", json=data)
    assert response.status_code == 201, response.get_json()
    act_as(client, login(client, data["email"], data["password"]))
    return response.headers["Location"], {**response.get_json(), "password": data["password"]}


def hits() -> float:
    return REGISTRY.get_sample_value("cache_hits_total", {"policy": "user_by_id"}) or 0.0


def failures() -> float:
    """Cache and session-state operations that failed (or were skipped by an open breaker)."""
    samples = [("cache_errors_total", op) for op in ("tag_versions", "get", "set", "delete")]
    samples += [("cache_errors_total", op) for op in ("acquire", "release", "invalidate")]
    samples += [("user_state_errors_total", op) for op in ("read", "write", "delete")]
    return sum(REGISTRY.get_sample_value(name, {"operation": op}) or 0.0 for name, op in samples)


def initials_of(client: FlaskClient, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["initials"]


def read_hit(client: FlaskClient, url: str, initials: str, timeout: float = SETTLE) -> int:
    """GETs until one is a cache hit (each answer right); how many were not."""
    misses = 0
    deadline = time.monotonic() + timeout
    while True:
        before = hits()
        assert initials_of(client, url) == initials  # a hit or not, never a wrong answer
        if hits() == before + 1:
            return misses
        misses += 1
        assert time.monotonic() < deadline, f"no cache hit within {timeout} s ({misses} GETs)"
        time.sleep(0.05)


def on_server(group: Group, port: int, prefix: str, user_id: UUID) -> str | None:
    """The initials of the user's cache entry on that master, if it holds one whose tag versions
    and epoch are current there: what a reader of that server would be served. Read with plain
    commands (no RedisTagCache, whose connection would run the fence itself): what the app's own
    connections left on the server."""
    direct = group.server(port, db=DB)
    try:
        blob = direct.get(prefix + keys.user(user_id))
        if blob is None:
            return None
        header_length, _expires_at, _delta, count = struct.unpack_from(">HddB", blob)
        position, recorded = 19, {}
        for _ in range(count):
            (length,) = struct.unpack_from(">H", blob, position)
            name = blob[position + 2 : position + 2 + length].decode()
            digits = blob[position + 2 + length]
            recorded[name] = blob[position + 3 + length : position + 3 + length + digits]
            position += 3 + length + digits
        current = direct.mget([f"{prefix}{name}:v" for name in recorded])
        if any((now or b"0") != version for now, version in zip(current, recorded.values(), strict=True)):
            return None
        found = representation(blob[header_length:])
        assert found is not None, f"a cached user in another format: {blob[header_length:][:20]!r}"
        return json.loads(found[1])["initials"]
    finally:
        direct.close()


def stored(group: Group, port: int, key: str) -> bytes | None:
    """The bytes at `key` on that server (a replica's included)."""
    server = group.server(port, db=DB)
    try:
        return server.get(key)
    finally:
        server.close()


def replicated(group: Group, master: int, key: str) -> bool:
    """Whether `key` is on the master and, after it has been sent to the replicas, on each."""
    server = group.server(master, db=DB)
    try:
        if not server.exists(key):
            return False
        server.wait(1, 2000)
        replicas = [port for port in (group.master_port, group.replica_port) if port != master]
        return all(group.server(port, db=DB).exists(key) for port in replicas)
    finally:
        server.close()


def switched(group: Group, old: int) -> int:
    """The new master's port, once the sentinels name another one than `old`."""
    wait_until(lambda: group.master() != old, SWITCH, f"a new master instead of {old}")
    return group.master()


def rejoined(group: Group, port: int, master: int) -> None:
    """Waits until the server on `port` is a replica of `master`, its link up."""

    def replica() -> bool:
        server = group.server(port)
        try:
            info = server.info("replication")
        finally:
            server.close()
        return linked_to(info, master)

    wait_until(replica, REJOIN, f"{port} a replica of {master} again, its link up")


def goes_on(client: FlaskClient, url: str, user: dict, initials: str, faker: Any) -> str:
    """The requests of a user after a switch, each answered right: a GET (served from the cache,
    after a bounded number of GETs from the database), a PATCH, a GET showing it, a logout that
    refuses the token, a login. The new initials."""
    assert read_hit(client, url, initials) <= FAILED_ATTEMPTS
    new = faker.lexify("??").upper()
    while new == initials:
        new = faker.lexify("??").upper()
    patched = client.patch(url, json={"initials": new})
    assert patched.status_code == 200, patched.get_json()
    assert patched.get_json()["initials"] == new
    assert initials_of(client, url) == new
    assert read_hit(client, url, new) <= FAILED_ATTEMPTS  # stored again, and served
    token = client.environ_base["HTTP_AUTHORIZATION"]
    assert client.post("/api/auth/logout").status_code == 204
    assert client.get("/api/auth/me").status_code == 401
    act_as(client, login(client, user["email"], user["password"]))
    assert client.get("/api/auth/me").status_code == 200
    assert client.get("/api/auth/me", headers={"Authorization": token}).status_code == 401
    return new


def still_right(client: FlaskClient, url: str, initials: str, token: str) -> None:
    """What the user last wrote, and the logout, hold (read from the master now)."""
    for _ in range(3):
        assert initials_of(client, url) == initials, "a stale entry was served"
        assert client.get("/api/auth/me", headers={"Authorization": token}).status_code == 401
        assert client.get("/api/auth/me").status_code == 200


# --- on the session's group: nothing but reads and writes ----------------------------------------


def test_the_cache_and_the_session_state_live_on_the_master_and_reach_the_replica(sentinel, faker):
    prefix = f"test:sentinel:{secrets.token_hex(8)}:"
    with service(sentinel, prefix) as client:
        url, user = register(client, faker)
        user_id, master = UUID(user["id"]), sentinel.master()
        replica = ({sentinel.master_port, sentinel.replica_port} - {master}).pop()

        assert read_hit(client, url, user["initials"], timeout=1.0) == 1  # a miss, then a hit

        assert on_server(sentinel, master, prefix, user_id) == user["initials"]
        assert replicated(sentinel, master, prefix + keys.user(user_id))
        entry = prefix + keys.user(user_id)  # the same bytes on the replica (never read there)
        assert stored(sentinel, replica, entry) == stored(sentinel, master, entry) is not None
        assert replicated(sentinel, master, prefix + keys.user_state(user_id))
        assert not sentinel.server(master).exists(prefix + keys.user(user_id))  # in db DB, not 0

        token = client.environ_base["HTTP_AUTHORIZATION"]
        new = goes_on(client, url, user, user["initials"], faker)
        assert on_server(sentinel, master, prefix, user_id) == new
        still_right(client, url, new, token)


# A Lua script that keeps the server busy for 0.8 s, then answers.
SLOW = """
local start = redis.call('TIME')
local began = tonumber(start[1]) * 1000000 + tonumber(start[2])
repeat
  local now = redis.call('TIME')
until tonumber(now[1]) * 1000000 + tonumber(now[2]) - began > 800000
return 'the slow reply'
"""


def test_a_command_that_timed_out_leaves_no_reply_for_the_next_one(sentinel):
    key = f"test:sentinel:{secrets.token_hex(8)}:key"
    client = make_client(sentinel.url(DB), socket_timeout=0.5)
    try:
        with pytest.raises(redis.TimeoutError):
            client.eval(SLOW, 0)
        # At once, while the server is still busy: on the connection that timed out, if it were
        # still open, this would read the script's reply when it comes (0.3 s later) as its own.
        assert client.set(key, b"mine") is True
        assert client.get(key) == b"mine"
    finally:
        client.delete(key)
        client.close()


def test_a_threads_connection_follows_the_pool_to_a_new_master(sentinel):
    client = make_client(sentinel.url(DB), socket_timeout=1.0)
    cache = RedisTagCache(client, f"test:sentinel:{secrets.token_hex(8)}:")
    try:
        assert cache.get("user.1") is None  # the thread's connection made, and connected
        connection = thread_connection(client)
        assert connection.port == sentinel.master()
        pool = client.connection_pool
        assert isinstance(pool, SentinelConnectionPool)
        pool.proxy.master_address = ("127.0.0.1", 1)  # as when a connection of the pool learns of another

        assert thread_connection(client) is connection
        assert connection._sock is None  # dropped: its next use asks the sentinels again
        assert cache.get("user.1") is None
        assert connection.port == sentinel.master() and pool.master_address == ("127.0.0.1", connection.port)

    finally:
        client.close()


# --- on a group of the test's own: failovers ------------------------------------------------------


@pytest.mark.slow
def test_the_app_follows_a_failover_then_a_killed_master_without_a_restart(tmp_path: Path, faker):
    prefix = f"test:sentinel:{secrets.token_hex(8)}:"
    with sentinel_group(tmp_path) as group, service(group, prefix, clean_up=False) as client:
        url, user = register(client, faker)
        user_id, first = UUID(user["id"]), group.master()
        assert read_hit(client, url, user["initials"], timeout=1.0) == 1
        assert replicated(group, first, prefix + keys.user(user_id))
        assert replicated(group, first, prefix + keys.user_state(user_id))

        # A failover by hand: the replica is promoted; the old master is told to follow it.
        sentinel = group.server(group.sentinel_ports[0])
        assert sentinel.execute_command("SENTINEL", "FAILOVER", SERVICE)
        sentinel.close()
        second = switched(group, first)
        failed = failures()
        token = client.environ_base["HTTP_AUTHORIZATION"]
        # Until the sentinels demote the old master (seconds later), it is still a master, and
        # connections the app already has may stay on it: what they write there is thrown away
        # at its demotion.
        initials = goes_on(client, url, user, user["initials"], faker)
        rejoined(group, first, second)
        still_right(client, url, initials, token)  # from the new master, which the app fenced
        assert on_server(group, second, prefix, user_id) in (None, initials), "the new master is stale"
        assert failures() - failed <= FAILED_CALLS

        # The new master is killed outright: the sentinels promote the old one, a replica again.
        group.processes[second].kill()
        group.stop(second)
        third = switched(group, second)
        assert third == first
        failed = failures()
        token = client.environ_base["HTTP_AUTHORIZATION"]
        initials = goes_on(client, url, user, initials, faker)
        assert on_server(group, third, prefix, user_id) == initials
        still_right(client, url, initials, token)
        assert failures() - failed <= FAILED_CALLS
