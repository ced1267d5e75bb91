"""A Sentinel failover under a read/write loop on two gunicorn workers: the replica is made to
lag (paused until its master drops the link), writes are acknowledged on the master alone (a
PATCH's invalidation, a logout), the master is killed and Sentinel promotes the replica. Across
it all: 0 stale reads, 0 logged-out tokens accepted, no other 5xx, and both workers serve cache hits
from the promoted replica afterwards.

Each round writes the loop user's initials on one server (A and B in turn) and reads them on
the other, twice; once the replica lags, it also reads the victim, a user written only then (a
PATCH, and a logout of one of its two sessions), on both servers: its initials must be the
PATCH's and the logged-out token refused. While the sentinels switch, a PATCH may answer 503
(its invalidation did not land in time, so it is not acknowledged), and so may a server's
first PATCHes after the promotion, until it has reached the new master; at no other time. The
database is a SQLite file both servers share; the cache is a Sentinel group of the test's own
(tests/support/sentinel.py). Every wait has a deadline; fails, never skips, without
redis-server.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import factories
from tests.e2e.conftest import Server, two_servers
from tests.support.sentinel import Group, sentinel_group
from tests.support.servers import wait_until

pytestmark = pytest.mark.slow
DB = 4
DEADLINE = 30.0  # seconds for each wait on the servers
AFTER_SWITCH = 40  # rounds once the replica is promoted
_HITS = re.compile(r'^cache_hits_total\{policy="user_by_id"\} (\S+)$', re.MULTILINE)


def hits(server: Server) -> float:
    response = server.request("GET", "/metrics")
    assert response.status == 200, f"GET /metrics on {server.name}: {response.status}"
    match = _HITS.search(response.body.decode())
    return float(match[1]) if match else 0.0


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def post_json(server: Server, path: str, data: dict, token: str | None = None):
    headers = {"Content-Type": "application/json", **(bearer(token) if token else {})}
    return server.request("POST", path, json.dumps(data).encode(), headers)


@dataclass
class Victim:
    """A user written only while the replica lags: what those writes hid must stay hidden."""

    path: str
    token: str  # a live session's
    logged_out: str  # a session logged out while the replica lags
    initials: str  # as last acknowledged


class Loop:
    """The rounds, and what they found: each writes the loop user's initials on one server and
    reads them on the other, twice; then, once there is a victim, reads it on both servers."""

    def __init__(self, a: Server, b: Server, path: str) -> None:
        self.servers, self.path = (a, b), path
        self.victim: Victim | None = None
        self.rounds, self.reads, self.refused = 0, 0, 0
        self.back: set[str] = set()  # the servers that wrote once the replica was promoted
        self.stale: list[str] = []
        self.accepted: list[str] = []
        self.errors: list[str] = []

    def round(self, label: str) -> None:
        i = self.rounds
        self.rounds += 1
        writer, reader = self.servers if i % 2 == 0 else self.servers[::-1]
        initials = f"F{i % 100:02d}"
        body = json.dumps({"initials": initials}).encode()
        patched = writer.request("PATCH", self.path, body, {"Content-Type": "application/json"})
        if patched.status == 503 and (
            label == "switching" or (label == "after" and writer.name not in self.back)
        ):
            # Not acknowledged (the cache did not answer in time: app.acknowledgement); either
            # value may be read until the next acknowledged write, so nothing is read here.
            self.refused += 1
            return
        if label == "after":
            self.back.add(writer.name)  # it has reached the new master: no 503 from it now
        if patched.status != 200:
            self.errors.append(f"{label} round {i}: PATCH on {writer.name}: {patched.status}")
            return
        for _ in range(2):
            self.read(f"{label} round {i}", reader, self.path, initials)
        if self.victim is not None:
            self.watch(f"{label} round {i}", self.victim)

    def watch(self, label: str, victim: Victim) -> None:
        for server in self.servers:
            self.read(label, server, victim.path, victim.initials, bearer(victim.token))
            me = server.request("GET", "/api/auth/me", headers=bearer(victim.logged_out))
            if me.status == 200:
                self.accepted.append(f"{label}: the logged-out token on {server.name}")
            elif me.status != 401:
                self.errors.append(f"{label}: GET /api/auth/me on {server.name}: {me.status}")

    def read(self, label: str, server: Server, path: str, initials: str, headers: dict | None = None) -> None:
        read = server.request("GET", path, headers=headers)
        self.reads += 1
        if read.status != 200:
            self.errors.append(f"{label}: GET {path} on {server.name}: {read.status}")
        elif (got := json.loads(read.body)["initials"]) != initials:
            self.stale.append(f"{label}: GET {path} on {server.name} gave {got}, not {initials}")


def quick_cache(name: str) -> dict[str, str]:
    """A key prefix of the test's own, and a cache that gives up on a lost server quickly."""
    return {
        "CACHE_PREFIX": f"test:{name}:{secrets.token_hex(4)}:",
        "CACHE_SOCKET_TIMEOUT": "0.25",
        "CACHE_BREAKER_RESET": "0.5",
    }


def test_no_stale_read_and_no_logged_out_token_across_a_failover(server_env, tmp_path: Path, faker):
    (tmp_path / "sentinel").mkdir()
    with sentinel_group(tmp_path / "sentinel") as group:
        env = {**server_env, "CACHE_URL": group.url(DB), **quick_cache("failover")}
        with two_servers(env, tmp_path) as (a, b):
            run(group, a, b, faker)


def signed_up(server: Server, faker) -> tuple[str, dict]:
    """A new user's path and credentials."""
    data = factories.registration(faker)
    registered = post_json(server, "/api/users", data)
    assert registered.status == 201, registered.body
    return f"/api/users/{json.loads(registered.body)['id']}", {
        "email": data["email"],
        "password": data["password"],
    }


def logged_in(server: Server, credentials: dict) -> str:
    session = post_json(server, "/api/auth/login", credentials)
    assert session.status == 200, session.body
    return json.loads(session.body)["access_token"]


def run(group: Group, a: Server, b: Server, faker) -> None:
    path, credentials = signed_up(a, faker)  # the loop's user
    token = logged_in(a, credentials)
    for server in (a, b):
        server.default_headers["Authorization"] = f"Bearer {token}"
    # The victim: its entry and its two sessions' state cached, replicated, then written only
    # while the replica lags.
    victim_path, victim_credentials = signed_up(b, faker)
    victim_token, victim_other = logged_in(a, victim_credentials), logged_in(b, victim_credentials)
    for server in (a, b):
        assert server.request("GET", victim_path, headers=bearer(victim_token)).status == 200
        assert server.request("GET", "/api/auth/me", headers=bearer(victim_other)).status == 200

    loop = Loop(a, b, path)
    for _ in range(10):
        loop.round("before")

    # The replica lags: paused until the master gives its link up.
    old_master = group.master()
    replica = ({group.master_port, group.replica_port} - {old_master}).pop()
    master = group.server(old_master)
    try:
        master.config_set("repl-timeout", 1)
        group.pause(replica)
        dropped = lambda: master.info("replication")["connected_slaves"] == 0  # noqa: E731
        wait_until(dropped, DEADLINE, "the master dropping the paused replica")
        # Acknowledged by the master alone: the victim's PATCH and logout, the rounds' PATCHes.
        patched = b.request(
            "PATCH",
            victim_path,
            json.dumps({"initials": "V99"}).encode(),
            {"Content-Type": "application/json", **bearer(victim_token)},
        )
        assert patched.status == 200, patched.body
        assert post_json(a, "/api/auth/logout", {}, victim_other).status == 204
        loop.victim = Victim(victim_path, victim_token, victim_other, "V99")
        for _ in range(10):
            loop.round("lagging")
        offset = master.info("replication")["master_repl_offset"]
    finally:
        master.close()

    # The master dies; the sentinels promote the replica as it is; the loop goes on throughout.
    group.processes[old_master].kill()
    group.stop(old_master)
    group.resume(replica)
    deadline = time.monotonic() + DEADLINE
    while group.master() != replica:
        loop.round("switching")
        assert time.monotonic() < deadline, f"the replica not promoted within {DEADLINE} s"
    promoted = group.server(replica)
    try:
        info = promoted.info("replication")
        assert info["role"] == "master"
        # It was behind: its history ends before the old master's writes did.
        assert info["second_repl_offset"] - 1 < offset, (info["second_repl_offset"], offset)
    finally:
        promoted.close()
    served = {server.name: hits(server) for server in (a, b)}
    for _ in range(AFTER_SWITCH):
        loop.round("after")

    problems = loop.stale + loop.accepted + loop.errors
    summary = (
        f"{len(loop.stale)} stale reads of {loop.reads}, {len(loop.accepted)} logged-out tokens accepted, "
        f"{len(loop.errors)} errors in {loop.rounds} rounds "
        f"({loop.refused} writes answered 503 while switching or reconnecting)"
    )
    print(f"\n{summary}")
    assert loop.back == {a.name, b.name}, f"a server never wrote after the promotion; {summary}"
    assert not problems, f"{summary}; first ones:\n" + "\n".join(problems[:20])
    for server in (a, b):  # the promoted replica served each worker's reads, not only the database
        assert hits(server) - served[server.name] >= AFTER_SWITCH // 4, (
            f"{server.name}: no cache hits after the switch"
        )
