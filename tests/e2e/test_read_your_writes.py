"""Invariant I1 across processes: with 2 app processes sharing Redis, after a PATCH returns on
one, a GET on the other shows it; 1,000 rounds, 0 stale.

Each round writes new initials on one server (A on even rounds, B on odd ones) and then reads on
the other: a first GET (the write invalidated the entry, so it misses and reloads through Flask),
a second GET (a hit on the fast path in front of Flask) and a GET with If-None-Match of the ETag
the PATCH returned (a 304). A read is stale when its status, ETag, initials or body differ from
what the PATCH answered. Both servers' entries are warm before the first round, so every round's
PATCH has a live shared entry to invalidate, and each round reads on the other server just before
its write so that entry is live in every round.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from tests import factories
from tests.e2e.conftest import Response, Server, SharedCache, login_everywhere

pytestmark = pytest.mark.slow
ROUNDS = 1_000
_HITS = re.compile(r'^cache_hits_total\{policy="user_by_id"\} (\S+)$', re.MULTILINE)
_MISSES = re.compile(r'^cache_misses_total\{policy="user_by_id"\} (\S+)$', re.MULTILINE)


def _counter(pattern: re.Pattern, text: str) -> float:
    match = pattern.search(text)
    return float(match[1]) if match else 0.0


def _metrics(server: Server) -> str:
    response = server.request("GET", "/metrics")
    assert response.status == 200, f"GET /metrics on {server.name}: {response.status}"
    return response.body.decode()


def _problem(read: Response, etag: str, initials: str, body: bytes, *, expect: int) -> str | None:
    """Why `read` is stale compared with the PATCH's answer, or None when it is not."""
    if read.status != expect:
        return f"status {read.status}, expected {expect}"
    if read.headers.get("etag") != etag:
        return f"ETag {read.headers.get('etag')}, expected {etag}"
    if expect == 304:
        return None
    got = json.loads(read.body).get("initials")
    if got != initials:
        return f"initials {got!r}, expected {initials!r}"
    if read.body != body:
        return f"body {read.body!r}, expected {body!r}"
    return None


def test_a_write_on_one_process_is_read_on_the_other(
    servers: tuple[Server, Server], shared_cache: SharedCache, faker
):
    a, b = servers
    data = factories.registration(faker)
    registered = a.request(
        "POST", "/api/users", json.dumps(data).encode(), {"Content-Type": "application/json"}
    )
    assert registered.status == 201, registered.body
    login_everywhere(servers, data["email"], data["password"])
    user_id = json.loads(registered.body)["id"]
    path = f"/api/users/{user_id}"
    for server in servers:  # warm the shared entry, so round 0 has one to invalidate too
        assert server.request("GET", path).status == 200

    stale: list[str] = []
    reads = 0
    started = time.perf_counter()
    for i in range(ROUNDS):
        writer, reader = (a, b) if i % 2 == 0 else (b, a)
        initials = f"R{i}"
        # The reader's entry is live right before the write, so a missed invalidation shows
        # in this very round.
        assert reader.request("GET", path).status == 200
        patched = writer.request(
            "PATCH", path, json.dumps({"initials": initials}).encode(), {"Content-Type": "application/json"}
        )
        assert patched.status == 200, f"round {i}: PATCH on {writer.name}: {patched.status} {patched.body!r}"
        etag = patched.headers["etag"]
        assert json.loads(patched.body)["initials"] == initials
        checks = (
            ("first GET", reader.request("GET", path), 200),
            ("second GET", reader.request("GET", path), 200),
            ("GET If-None-Match", reader.request("GET", path, headers={"If-None-Match": etag}), 304),
        )
        for label, read, expect in checks:
            reads += 1
            if (problem := _problem(read, etag, initials, patched.body, expect=expect)) is not None:
                stale.append(f"round {i}, PATCH on {writer.name}, {label} on {reader.name}: {problem}")
    elapsed = time.perf_counter() - started

    exposed = {server.name: _metrics(server) for server in servers}
    hits = {name: _counter(_HITS, text) for name, text in exposed.items()}
    misses = {name: _counter(_MISSES, text) for name, text in exposed.items()}
    cached = list(shared_cache.client.scan_iter(match=shared_cache.prefix + "*", count=1000))
    print(
        f"\n{ROUNDS} rounds ({ROUNDS} PATCHes, {ROUNDS + reads} reads) in {elapsed:.2f} s: "
        f"{ROUNDS / elapsed:.0f} rounds/s, {(2 * ROUNDS + reads) / elapsed:.0f} requests/s; "
        f"user_by_id hits {hits}, misses {misses}; {len(cached)} Redis keys under the prefix; "
        f"{len(stale)} stale"
    )

    assert not stale, f"{len(stale)} stale reads of {reads}; first ones:\n" + "\n".join(stale[:20])
    entry = (shared_cache.prefix + f"user.{user_id}").encode()
    assert entry in cached, f"no cached entry {entry!r} under the prefix; keys: {cached[:20]}"
    for name, count in hits.items():
        assert count > 0, f"server {name} reports no user_by_id cache hits: the fast path was not used"
    # Every round's second GET and 304 are hits (XFetch never fires this early in a 600 s TTL).
    assert sum(hits.values()) >= 2 * ROUNDS, f"fewer cache hits than rounds' cached reads: {hits}"
