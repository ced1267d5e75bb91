# Over 200 lines: two failovers of a real Cluster, each step checked on the nodes as well as the client.
"""The fence per slot group (adapters.redis.fence.GROUP_FENCE) across real Redis Cluster
failovers, through ONE ClusterClient kept from start to end: a Cluster demotes and promotes
masters without ending its clients' connections, so the fence must hold on the connections the
client already has, not only on new ones.

* A replica that missed an invalidation and a logout its master acknowledged is promoted when
  the master dies: the promoted node does hold the entry and the live session those writes hid
  (read raw: the data is stale, its tag version and epoch the entry's), and neither the tag cache
  nor the session-state store serves them; both go on working.
* A master demoted by a manual CLUSTER FAILOVER, which then misses writes of its replica (now
  the master) and is promoted back (TAKEOVER): the client goes back to it on the connection it
  opened before the demotion, and still refuses the entry and the session the lost writes hid.
  A fence run once per connection, when it connects, would have served both.

A replica is made to lag for real: stopped (SIGSTOP) until its master drops the link
(repl-timeout 1 s), so the writes that follow are not even in its socket buffer. Runs on a
Cluster of the test's own, one replica per master (tests/support/cluster.py); every wait has a
deadline; fails, never skips, without redis-server or redis-cli.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack, closing
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar
from uuid import UUID, uuid4

import pytest
import redis
from redis.crc import key_slot

from adapters.caching import keys
from adapters.redis.cluster_client import ClusterClient
from adapters.redis.cluster_stores import ClusterTagCache, ClusterUserStateStore
from adapters.redis.session_state import decode
from domain.session_state.model import Group, LiveSession, Sessions, UserState, Versioned
from tests.support.cluster import Cluster, redis_cluster
from tests.support.servers import poll, wait_until

pytestmark = pytest.mark.slow

PREFIX = "test:failover:"
DEADLINE = 20.0  # seconds for each step that waits on the nodes
T = TypeVar("T")


def eventually(what: str, attempt: Callable[[], T]) -> T:
    """The first answer of `attempt()`, through the connection errors of a switch (the client
    learns the new master after one)."""
    answers: list[T] = []

    def answered() -> bool:
        answers.append(attempt())
        return True

    assert poll(answered, DEADLINE), f"not within {DEADLINE} s: {what}"
    return answers[0]


def sessions(user_id: UUID, version: int, *tokens: str) -> UserState:
    """The user's sessions group at `version`: the sessions of `tokens` live (none: logged out)."""
    moment = datetime(2026, 12, version, tzinfo=UTC)
    live = {uuid4(): LiveSession(token, moment) for token in tokens}
    return UserState(user_id, sessions=Versioned(version, Sessions(live, moment)))


def live_tokens(states: ClusterUserStateStore, user_id: UUID) -> set[str] | None:
    """The live sessions a read finds; None when it finds no sessions group (a miss)."""
    found = states.read(user_id, reader="test")
    if found is None or found.sessions is None:
        return None
    return {session.refresh_digest for session in found.sessions.value.live.values()}


def lag(cluster: Cluster, replica: int, master: redis.Redis) -> None:
    """Stop the replica until `master` gives its link up: what the master writes next never
    reaches it."""
    master.config_set("repl-timeout", 1)
    cluster.pause(replica)
    wait_until(
        lambda: master.info("replication")["connected_slaves"] == 0,
        DEADLINE,
        f"the master dropping the stopped replica on {replica}",
    )


class Stores:
    """The tag cache and the session-state store on one client, and the user's keys."""

    def __init__(self, client: ClusterClient, user_id: UUID) -> None:
        self.cache = ClusterTagCache(client, PREFIX)
        self.states = ClusterUserStateStore(client, PREFIX)
        self.user_id = user_id
        self.key = keys.user(user_id)
        self.at = f"{PREFIX}{{{keys.slot_group(self.key)}}}"  # the user's group
        self.slot = key_slot(self.at.encode())

    def put(self, value: bytes) -> None:
        versions = self.cache.tag_versions(self.key, keys.user_tags(self.user_id))
        assert self.cache.set(self.key, value, ttl=60, versions=versions)

    def log_in(self, version: int, token: str) -> None:
        assert self.states.write(sessions(self.user_id, version, token)) == {Group.SESSIONS}

    def log_out(self, version: int) -> None:
        assert self.states.write(sessions(self.user_id, version)) == {Group.SESSIONS}

    def entry(self) -> bytes | None:
        found = self.cache.get(self.key)
        return None if found is None else found.value

    def hidden(self, server: redis.Redis, blob: bytes, token: str) -> None:
        """`server`, a promoted node, holds the entry (as `blob`) and the live session `token`
        that the writes it missed hid, and the id it stored beside the group's epoch is another
        history's (what the fence compares)."""
        assert server.get(self.at + self.key) == blob
        fields = server.hgetall(self.at + keys.user_state(self.user_id))
        state = decode(self.user_id, [item for pair in fields.items() for item in pair], "test")
        assert state is not None and state.sessions is not None, fields
        assert [s.refresh_digest for s in state.sessions.value.live.values()] == [token]
        replid = server.info("replication")["master_replid"]
        assert server.get(self.at + "~epoch:replid") not in (None, replid.encode())


def test_a_promoted_replica_that_missed_an_invalidation_and_a_logout_serves_neither(tmp_path: Path):
    with redis_cluster(tmp_path, replicas=1) as cluster, ExitStack() as stack:
        client = ClusterClient(cluster.url(), socket_timeout=2.0)
        stack.callback(client.close)
        user = Stores(client, uuid4())
        master = cluster.owner(user.slot)
        replica = cluster.replica_of(master)
        master_server = stack.enter_context(closing(cluster.server(master)))

        # What the replica will keep: an entry tagged with the user, a live session; both hits.
        user.put(b"before")
        user.log_in(1, "the-session")
        assert user.entry() == b"before"
        assert live_tokens(user.states, user.user_id) == {"the-session"}
        cluster.wait_synced(replica)
        blob = master_server.get(user.at + user.key)
        tag_version = master_server.get(f"{user.at}{user.key}:v")
        epoch = master_server.get(user.at + "~epoch:v")

        # The replica lags; the master acknowledges an invalidation and a logout it never sees.
        lag(cluster, replica, master_server)
        user.cache.invalidate(user.key)
        user.log_out(2)
        assert user.entry() is None
        assert live_tokens(user.states, user.user_id) == set()
        assert master_server.get(f"{user.at}{user.key}:v") != tag_version

        # The master dies; the Cluster promotes the replica as it is (no manual step).
        cluster.kill(master)
        cluster.resume(replica)
        cluster.wait_master(replica, DEADLINE)
        cluster.wait_ok(DEADLINE)

        # It holds what the lost writes hid, the entry's tag version and the epoch included:
        # served as it is, the entry would pass the tag check.
        promoted = stack.enter_context(closing(cluster.server(replica)))
        user.hidden(promoted, blob, "the-session")
        assert promoted.get(f"{user.at}{user.key}:v") == tag_version
        assert promoted.get(user.at + "~epoch:v") == epoch
        assert promoted.hget(user.at + keys.user_state(user.user_id), "sessions:v") == b"1"

        # The same client refuses both: the first read renews the group's epoch on the new
        # master. The session state is read first here, the entry first in the next test: each
        # store's own fence is shown.
        tokens = eventually("a read on the promoted replica", lambda: live_tokens(user.states, user.user_id))
        assert not tokens, f"the promoted replica served the logged-out sessions {tokens}"
        found = user.entry()
        assert found is None, f"the promoted replica served the invalidated entry {found!r}"
        assert promoted.get(user.at + "~epoch:v") != epoch
        assert promoted.get(user.at + user.key) == blob  # still there: refused, not lost

        # And both go on on the new master.
        user.put(b"after")
        assert user.entry() == b"after"
        user.log_in(3, "a-new-session")
        assert live_tokens(user.states, user.user_id) == {"a-new-session"}


def test_a_master_demoted_and_promoted_again_refuses_on_the_connections_the_client_kept(tmp_path: Path):
    with redis_cluster(tmp_path, replicas=1) as cluster, ExitStack() as stack:
        client = ClusterClient(cluster.url(), socket_timeout=2.0)
        stack.callback(client.close)
        user = Stores(client, uuid4())
        first = cluster.owner(user.slot)
        second = cluster.replica_of(first)
        first_server = stack.enter_context(closing(cluster.server(first)))
        second_server = stack.enter_context(closing(cluster.server(second)))

        # The client's connection to the first master, made while it is the master.
        user.put(b"on-the-first")
        assert user.entry() == b"on-the-first"
        opened_before = max(int(c["id"]) for c in first_server.client_list())
        cluster.wait_synced(second)

        # A manual failover, nothing lost: the second is the master, the first its replica.
        cluster.failover(second)
        cluster.wait_master(second, DEADLINE)
        cluster.wait_replicating(first, second, DEADLINE)
        cluster.wait_ok(DEADLINE)

        # On the second: an entry and a live session, which the first receives.
        eventually("a store on the second", lambda: user.put(b"on-the-second"))
        user.log_in(1, "the-session")
        assert user.entry() == b"on-the-second"
        assert live_tokens(user.states, user.user_id) == {"the-session"}
        blob = second_server.get(user.at + user.key)
        cluster.wait_synced(first)

        # The first lags; the second acknowledges an invalidation and a logout it never sees.
        lag(cluster, first, second_server)
        user.cache.invalidate(user.key)
        user.log_out(2)
        assert user.entry() is None
        assert live_tokens(user.states, user.user_id) == set()

        # The first is promoted back without them: the second stopped, the first resumed and
        # taking over at once (TAKEOVER: no vote, before it could reconnect and catch up). The
        # second, resumed, becomes its replica and resyncs from it: the writes are lost there too.
        cluster.pause(second)
        cluster.resume(first)
        cluster.failover(first, "TAKEOVER")
        cluster.wait_master(first, DEADLINE)
        cluster.resume(second)
        cluster.wait_replicating(second, first, DEADLINE)
        cluster.wait_ok(DEADLINE)
        user.hidden(first_server, blob, "the-session")
        second_server.execute_command("READONLY")  # a replica's keys, read on the replica
        assert second_server.get(user.at + user.key) == blob

        # The same client, sent back to the first (MOVED), refuses both.
        found = eventually("a read on the first, master again", user.entry)
        assert found is None, f"the master promoted back served the invalidated entry {found!r}"
        tokens = live_tokens(user.states, user.user_id)
        assert not tokens, f"the master promoted back served the logged-out sessions {tokens}"
        # On a connection it had before the demotion: the only scripts run on the first since
        # came on connections opened before it (client ids only grow).
        scripts = [c for c in first_server.client_list() if c["cmd"] in ("evalsha", "eval")]
        assert scripts, "no script ran on the first master"
        newer = [c["addr"] for c in scripts if int(c["id"]) > opened_before]
        assert not newer, f"the client came back to the first on new connections {newer}, not a kept one"
