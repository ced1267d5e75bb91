"""The fence (adapters.redis.fence) across a real failover: a replica that missed writes its
master acknowledged (an invalidation, a logout) is promoted by Sentinel, and still holds the
entry and the session those writes hid; neither the tag cache nor the session-state store serves
them, and both go on working on the new master.

The replica is made to lag for real: it is paused until the master drops its link (repl-timeout
1 s), so the writes that follow are not even in the replica's socket buffer. Runs on a Sentinel
group of the test's own (tests/support/sentinel.py); every wait has a deadline; fails, never
skips, without redis-server.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from contextlib import ExitStack, closing
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar
from uuid import uuid4

import pytest
import redis

from adapters.caching import keys
from adapters.redis.connection import make_client
from adapters.redis.session_state import RedisUserStateStore
from adapters.redis.tag_cache import RedisTagCache
from domain.session_state.model import LiveSession, Sessions, UserState, Versioned
from tests.support.sentinel import sentinel_group

pytestmark = pytest.mark.slow

DB = 3
DEADLINE = 20.0  # seconds for each step that waits on the servers
T = TypeVar("T")


def eventually(what: str, attempt: Callable[[], T], done: Callable[[T], bool] = bool) -> T:
    """`attempt()` until `done(result)`, through the connection errors of a switch."""
    deadline = time.monotonic() + DEADLINE
    while True:
        try:
            result = attempt()
            if done(result):
                return result
        except redis.RedisError:
            pass
        assert time.monotonic() < deadline, f"not within {DEADLINE} s: {what}"
        time.sleep(0.05)


def sessions(version: int, *tokens: str) -> UserState:
    moment = datetime(2026, 12, 1, tzinfo=UTC)
    live = {uuid4(): LiveSession(token, moment) for token in tokens}
    return UserState(uuid4(), sessions=Versioned(version, Sessions(live, moment)))


def test_a_promoted_replica_that_missed_writes_serves_nothing_they_hid(tmp_path: Path):
    prefix = f"test:fence:{secrets.token_hex(4)}:"
    with sentinel_group(tmp_path) as group, ExitStack() as stack:
        client = stack.enter_context(closing(make_client(group.url(DB), socket_timeout=1.0)))
        cache, states = RedisTagCache(client, prefix), RedisUserStateStore(client, prefix)
        old_master = group.master()
        replica = ({group.master_port, group.replica_port} - {old_master}).pop()
        master = stack.enter_context(closing(group.server(old_master, db=DB)))

        # What the replica will keep: an entry tagged "user", a live session.
        cache.set("user.1", b"before", ttl=60, versions=cache.tag_versions("user.1", ["user"]))
        logged_in = sessions(1, "the-session")
        states.write(logged_in)
        user_id = logged_in.user_id
        assert master.wait(1, 2000) == 1  # both on the replica

        # The replica lags: paused until the master gives its link up.
        master.config_set("repl-timeout", 1)
        group.pause(replica)
        eventually(
            "the master dropping the paused replica",
            lambda: master.info("replication")["connected_slaves"],
            lambda count: count == 0,
        )
        # Writes the master acknowledges and the replica never sees: an invalidation, a logout.
        version_before = master.get(prefix + "user:v")
        cache.invalidate("user")
        logged_out = UserState(
            user_id, sessions=Versioned(2, Sessions({}, datetime(2026, 12, 2, tzinfo=UTC)))
        )
        assert states.write(logged_out)
        assert cache.get("user.1") is None
        assert states.read(user_id, reader="test").sessions.value.live == {}  # type: ignore[union-attr]

        # The master dies; the sentinels promote the replica as it is.
        group.processes[old_master].kill()
        group.stop(old_master)
        group.resume(replica)
        eventually("the replica promoted", group.master, lambda port: port == replica)

        promoted = stack.enter_context(closing(group.server(replica, db=DB)))
        # It does hold what the lost writes hid, and the entry's tag version is the one the
        # entry recorded: the tag check alone would serve it.
        assert promoted.get(prefix + "user.1") is not None
        assert promoted.get(prefix + "user:v") == version_before
        assert promoted.hget(prefix + keys.user_state(user_id), "sessions:v") == b"1"

        # Neither store serves it: the new master's first connection renewed the epoch.
        assert eventually("a read on the new master", lambda: cache.get("user.1") or "none") == "none"
        assert states.read(user_id, reader="test") is None
        assert promoted.info("replication")["role"] == "master"

        # And both go on: a new entry and a new state are stored and served.
        eventually(
            "a store on the new master",
            lambda: cache.set("user.1", b"after", ttl=60, versions=cache.tag_versions("user.1", ["user"])),
        )
        assert cache.get("user.1").value == b"after"  # type: ignore[union-attr]
        again = UserState(user_id, sessions=Versioned(3, Sessions({}, datetime(2026, 12, 3, tzinfo=UTC))))
        assert states.write(again)
        assert states.read(user_id, reader="test").sessions.version == 3  # type: ignore[union-attr]
