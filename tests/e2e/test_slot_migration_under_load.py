"""A Redis Cluster slot moved to another master under a read/write loop on two gunicorn workers:
the slot of the loop user's slot group (its entry, its tag's version, its session state, the
group's epoch) moves a few keys at a time (tests/support/cluster.py's `migrate`), so that for
most of the move the group's keys are on two masters and the service's scripts meet ASK and
TRYAGAIN. Across it all: 0 stale reads, 0 logged-out tokens accepted, no 5xx (a script Redis
refuses skips the cache, the database answers), and both workers serve cache hits from the new
owner afterwards.

Each round is the failover test's (tests/e2e/test_failover_under_load.py): it writes the loop
user's initials on one server (A and B in turn) and reads them on the other, twice. A second
session of the user's is logged out in one of the first rounds of the move, and every round
after asks both servers with it. Filler keys make the move last ~100 rounds; Redis 7.0 moves a
slot's newest keys first, so the group's own keys are put back (RESTORE) between the fillers,
to move far apart. The database is a SQLite file both servers share; the cluster is the test's
own. Every wait has a deadline; fails, never skips, without redis-server.
"""

from __future__ import annotations

import time
from pathlib import Path
from uuid import UUID

import pytest
import redis
from redis.crc import key_slot

from adapters.caching import keys
from tests.e2e.conftest import Server, two_servers
from tests.e2e.test_failover_under_load import (
    Loop,
    bearer,
    hits,
    logged_in,
    post_json,
    quick_cache,
    signed_up,
)
from tests.support.cluster import Cluster, redis_cluster

pytestmark = pytest.mark.slow
BEFORE = 10  # rounds before the move
FILLERS = 300  # keys of the slot besides the group's own: ~100 MIGRATE batches of 3
LOGOUT_AT = 3  # the batch of the move after which the second session is logged out
ROUND_DEADLINE = 5.0  # seconds a round may take: one waiting out a recompute lease (5 s) is stuck
MOVE_DEADLINE = 180.0  # seconds for the whole move, its ~100 rounds included
AFTER_MOVE = 20  # rounds once the target owns the slot


class Rounds(Loop):
    """The failover test's rounds, each within ROUND_DEADLINE; once `logged_out` is set, each
    also asks both servers with it."""

    logged_out: str | None = None
    slowest = 0.0

    def round(self, label: str) -> None:
        started = time.monotonic()
        super().round(label)
        if (token := self.logged_out) is not None:
            for server in self.servers:
                me = server.request("GET", "/api/auth/me", headers=bearer(token))
                where = f"{label} round {self.rounds - 1}: GET /api/auth/me on {server.name}"
                if me.status == 200:
                    self.accepted.append(f"{where} accepted the logged-out token")
                elif me.status != 401:
                    self.errors.append(f"{where}: {me.status}")
        self.slowest = max(self.slowest, took := time.monotonic() - started)
        assert took < ROUND_DEADLINE, f"{label}: the round took {took:.1f} s; {self.counts()}"

    def counts(self) -> str:
        fives = sum(error.rpartition(" ")[2].startswith("5") for error in self.errors)
        return (
            f"{len(self.stale)} stale reads of {self.reads}, {len(self.accepted)} logged-out tokens "
            f"accepted, {len(self.errors)} errors ({fives} 5xx) in {self.rounds} rounds (the slowest "
            f"{self.slowest:.1f} s); first problems: {(self.stale + self.accepted + self.errors)[:5]}"
        )


def test_no_stale_read_and_no_logged_out_token_across_a_slot_migration(server_env, tmp_path: Path, faker):
    (tmp_path / "cluster").mkdir()
    with redis_cluster(tmp_path / "cluster") as cluster:
        env = {**server_env, "CACHE_URL": cluster.url(), **quick_cache("migration")}
        with two_servers(env, tmp_path) as (a, b):
            run(cluster, env["CACHE_PREFIX"], a, b, faker)


def slot_keys(server: redis.Redis, slot: int) -> list[bytes]:
    return server.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 10_000)


def interleave(server: redis.Redis, slot: int, at: str) -> list[bytes]:
    """Fill the slot, the group's own keys put back (RESTORE: the same value and expiry) one by
    one between the fillers, and return them: then MIGRATE moves them far apart."""
    own = slot_keys(server, slot)
    fillers = iter(f"{at}filler.{n}" for n in range(FILLERS))
    for key in [None, *own]:
        if key is not None:
            ttl, blob = server.execute_command("PTTL", key), server.execute_command("DUMP", key)
            server.execute_command("RESTORE", key, max(ttl, 0), blob, "REPLACE")
        for _ in range(FILLERS // (len(own) + 1)):
            server.set(next(fillers), b"x")
    return own


def run(cluster: Cluster, prefix: str, a: Server, b: Server, faker) -> None:
    path, credentials = signed_up(a, faker)  # the loop's user
    token = logged_in(a, credentials)
    for server in (a, b):
        server.default_headers["Authorization"] = f"Bearer {token}"
    other = logged_in(b, credentials)  # the second session, logged out during the move
    for server in (a, b):
        assert server.request("GET", "/api/auth/me", headers=bearer(other)).status == 200
    loop, began = Rounds(a, b, path), time.monotonic()
    for _ in range(BEFORE):
        loop.round("before")
    paces = [(time.monotonic() - began) / BEFORE]  # seconds a round: before, during, after the move

    at = f"{prefix}{{{keys.slot_group(keys.user(UUID(path.rpartition('/')[2])))}}}"
    slot = key_slot(at.encode())
    source = cluster.owner(slot)
    target = next(port for port in cluster.ports if port != source)
    nodes = [cluster.server(port) for port in (source, target)]
    served = [{server.name: hits(server) for server in (a, b)}]  # before, after the move, at the end
    batches, split, began = 0, 0, time.monotonic()

    def between() -> None:  # a round after each MIGRATE batch
        nonlocal batches, split
        batches += 1
        if batches == LOGOUT_AT:
            logout = post_json(a, "/api/auth/logout", {}, other)
            assert logout.status == 204, f"logout during the move: {logout.status} {logout.body!r}"
            loop.logged_out = other
        split += all(any(key in own for key in slot_keys(node, slot)) for node in nodes)
        loop.round(f"moving (batch {batches})")
        assert time.monotonic() - began < MOVE_DEADLINE, (
            f"the move of slot {slot} not done within {MOVE_DEADLINE:.0f} s, {batches} MIGRATE batches "
            f"in: {loop.counts()}"
        )

    try:
        own = interleave(nodes[0], slot, at)
        moved = cluster.migrate(slot, target, between)
    finally:
        for node in nodes:
            node.close()
    duration = time.monotonic() - began
    paces.append(duration / max(batches, 1))
    assert cluster.owner(slot) == target, f"slot {slot} on {cluster.owner(slot)} after its move to {target}"
    served.append({server.name: hits(server) for server in (a, b)})
    began = time.monotonic()
    for _ in range(AFTER_MOVE):
        loop.round("after")
    paces.append((time.monotonic() - began) / AFTER_MOVE)
    served.append({server.name: hits(server) for server in (a, b)})

    problems = loop.stale + loop.accepted + loop.errors
    summary = (
        f"{loop.counts()}; {batches} rounds during the move of slot {slot}'s {moved} keys in "
        f"{duration:.1f} s (the group's {len(own)} on two masters in {split}); ms a round "
        "before/during/after: " + "/".join(f"{1000 * pace:.0f}" for pace in paces) + "; "
        f"user_by_id hits before/after the move/at the end: {served}"
    )
    print(f"\n{summary}")
    assert not problems, f"{summary}; first ones:\n" + "\n".join(problems[:20])
    assert split >= 10, f"{summary}: the group's keys were hardly ever on two masters"
    for server in (a, b):  # the new owner served each worker's reads, not only the database
        assert served[2][server.name] - served[1][server.name] >= AFTER_MOVE // 4, (
            f"{summary}: {server.name} served no cache hits after the move"
        )
