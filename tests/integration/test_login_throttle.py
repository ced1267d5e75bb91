"""LoginThrottle on `limits` (adapters.throttle): one behavioural suite, run on in-process memory,
on the real Redis (TEST_REDIS_URL, default db 11: fails, never skips, when Redis is down), on the
master of the tests' Sentinel group (redis+sentinel://, tests/support/sentinel.py), on the tests'
three-master Cluster (redis+cluster://, tests/support/cluster.py) and on a Redis
that cannot be reached (a closed port), where the throttle must count in-process and never raise.
Then the fallback itself: its warnings, and the way back to Redis.

Each Redis test has a random key prefix, and its keys are deleted afterwards. On Redis and on
Sentinel the fallback would hide a storage that never worked, so there a storage error fails the
test.
"""

from __future__ import annotations

import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from urllib.parse import urlparse

import pytest
from faker import Faker
from redis import Redis

from adapters.throttle import LimitsLoginThrottle, login_throttle
from tests.support.clock import SettableClock
from tests.support.cluster import redis_cluster
from tests.support.redis import REDIS_URL, delete_prefixed, redis_client

MakeThrottle = Callable[..., LimitsLoginThrottle]
FIFTEEN_MINUTES, FIVE_MINUTES = 15 * 60, 5 * 60
CLOSED = "redis://127.0.0.1:1/11"  # nothing listens on port 1
SENTINEL_DB = 14  # the throttle's database in the tests' Sentinel group


@pytest.fixture
def prefix() -> str:
    return f"test:throttle:{secrets.token_hex(8)}"


@pytest.fixture
def redis(prefix: str) -> Iterator[Redis]:
    """A client on the test Redis (the test fails when there is none); the test's keys are
    deleted afterwards."""
    client = redis_client()
    try:
        yield client
    finally:
        delete_prefixed(client, f"{prefix}:")
        client.close()


class StorageMustAnswer:
    """The outage log of a throttle whose storage is up: a storage error fails the test instead
    of being counted in-process unnoticed."""

    def failed(self, call: str, error: object) -> None:
        raise AssertionError(f"the throttle's storage failed ({call}): {error!r}")

    def answered(self) -> None:
        pass


@pytest.fixture(params=["memory", "redis", "sentinel", "cluster", "redis-down"])
def make_throttle(request: pytest.FixtureRequest, prefix: str) -> MakeThrottle:
    """Builds throttles with the given policy keywords on one backend."""
    policy: dict = {}
    if request.param == "redis":
        request.getfixturevalue("redis")
    if request.param in ("sentinel", "cluster"):
        servers = request.getfixturevalue(request.param)
        url = servers.url(SENTINEL_DB) if request.param == "sentinel" else servers.url()
        keys = redis_client(url)  # the master's (as the sentinels say), or the Cluster's nodes

        def clean_up() -> None:
            delete_prefixed(keys, f"{prefix}:")
            keys.close()

        request.addfinalizer(clean_up)
    else:
        url = {"memory": "memory", "redis": REDIS_URL, "redis-down": CLOSED}[request.param]
    if request.param in ("redis", "sentinel", "cluster"):
        policy["outage"] = StorageMustAnswer()
    return lambda **more: login_throttle(url, prefix, **{**policy, **more})


@pytest.fixture
def account(faker: Faker) -> Callable[[], str]:
    return lambda: faker.unique.sha256()  # opaque account keys, as callers derive them


@pytest.fixture
def client(faker: Faker) -> Callable[[], str]:
    return lambda: faker.unique.ipv4() if faker.boolean() else faker.unique.ipv6()


def fail(throttle: LimitsLoginThrottle, account: str, client: str, times: int) -> None:
    for _ in range(times):
        throttle.failed(account, client)


def test_five_failures_block_the_pair_for_at_most_fifteen_minutes(make_throttle, account, client):
    throttle = make_throttle()
    victim, attacker = account(), client()
    fail(throttle, victim, attacker, 4)
    assert throttle.retry_after(victim, attacker) == 0

    throttle.failed(victim, attacker)

    assert 0 < throttle.retry_after(victim, attacker) <= FIFTEEN_MINUTES
    assert throttle.retry_after(victim, client()) == 0  # the account's owner, elsewhere
    assert throttle.retry_after(account(), attacker) == 0  # another account from that client


def test_a_success_clears_that_clients_failures_only(make_throttle, account, client):
    throttle = make_throttle()
    user, home, other = account(), client(), client()
    fail(throttle, user, home, 5)
    fail(throttle, user, other, 5)

    throttle.succeeded(user, home)

    assert throttle.retry_after(user, home) == 0
    fail(throttle, user, home, 4)
    assert throttle.retry_after(user, home) == 0  # counting starts again from nothing
    assert 0 < throttle.retry_after(user, other) <= FIFTEEN_MINUTES


def test_failures_from_many_clients_block_the_account_for_minutes_only(make_throttle, account, client):
    throttle = make_throttle()
    victim = account()
    for _ in range(19):
        throttle.failed(victim, client())
    assert throttle.retry_after(victim, client()) == 0

    throttle.failed(victim, client())

    assert 0 < throttle.retry_after(victim, client()) <= FIVE_MINUTES
    assert throttle.retry_after(account(), client()) == 0


def test_failures_on_many_accounts_block_the_client(make_throttle, account, client):
    throttle = make_throttle()
    sprayer = client()
    for _ in range(49):
        throttle.failed(account(), sprayer)
    assert throttle.retry_after(account(), sprayer) == 0

    throttle.failed(account(), sprayer)

    assert 0 < throttle.retry_after(account(), sprayer) <= FIFTEEN_MINUTES
    assert throttle.retry_after(account(), client()) == 0


@pytest.mark.parametrize("limit", ["per_pair", "per_client", "per_account"])
def test_a_block_expires_by_itself(make_throttle, account, client, limit):
    throttle = make_throttle(**{limit: "2/1 second"})
    user, address = account(), client()
    throttle.failed(user, address)
    assert throttle.retry_after(user, address) == 0
    throttle.failed(user, address)

    wait = throttle.retry_after(user, address)
    assert wait == 1  # whole seconds, rounded up
    time.sleep(wait)

    assert throttle.retry_after(user, address) == 0


def test_the_longest_block_decides(make_throttle, account, client):
    throttle = make_throttle(per_pair="1/1 minute", per_account="1/2 second")
    user, address = account(), client()
    throttle.failed(user, address)
    assert 58 <= throttle.retry_after(user, address) <= 60


def test_separators_in_keys_do_not_merge_counts(make_throttle):
    throttle = make_throttle(per_pair="1/1 minute")
    throttle.failed("a/b", "c")
    assert throttle.retry_after("a", "b/c") == 0


# The fallback


def test_an_unreachable_redis_is_reported_once_then_once_a_minute_without_keys(
    prefix, account, client, caplog
):
    clock = SettableClock(0.0)
    throttle = login_throttle(CLOSED, prefix, storage_retry=0.0, monotonic=clock)
    user, address = account(), client()

    with caplog.at_level(logging.WARNING, logger="user_service.auth"):
        fail(throttle, user, address, 5)
        assert throttle.retry_after(user, address) > 0
        clock.now += 59.0
        throttle.failed(user, address)  # the seventh failed call: within the minute, no line
        clock.now += 1.0
        throttle.succeeded(user, address)
        assert throttle.retry_after(user, address) == 0

    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith("operation=throttle.unreachable call=failed ")
    assert "ConnectionError" in warnings[0]
    assert warnings[1].startswith("operation=throttle.still_unreachable failed=7 down_for=60.0s:")
    assert user[:8] not in caplog.text and address not in caplog.text


class Forwarder:
    """A TCP forwarder to Redis on a port of its own: "Redis" comes up when it starts."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._sockets: list[socket.socket] = []

    def start(self) -> None:
        self._server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with suppress(OSError):
            while True:
                near, _ = self._server.accept()
                far = socket.create_connection(self.upstream)
                self._sockets += [near, far]
                threading.Thread(target=self._pump, args=(near, far), daemon=True).start()
                threading.Thread(target=self._pump, args=(far, near), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        with suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        with suppress(OSError):
            target.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        for sock in [self._server, *self._sockets]:
            sock.close()


def test_the_throttle_goes_back_to_redis_and_keeps_blocks_from_the_outage(
    redis, prefix, account, client, caplog
):
    real = urlparse(REDIS_URL)
    forwarder = Forwarder((real.hostname or "127.0.0.1", real.port or 6379))
    url = real._replace(
        netloc=real.netloc.replace(f"{real.hostname}:{real.port}", f"127.0.0.1:{forwarder.port}")
    )
    throttle = login_throttle(url.geturl(), prefix, storage_retry=0.0)
    user, address = account(), client()
    try:
        fail(throttle, user, address, 5)  # Redis is down: counted in-process
        assert throttle.retry_after(user, address) > 0
        assert not list(redis.scan_iter(match=f"{prefix}:*"))

        forwarder.start()
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="user_service.auth"):
            assert 0 < throttle.retry_after(user, address) <= FIFTEEN_MINUTES
        recovered = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(recovered) == 1, recovered
        # The five failures and the retry_after before them did without Redis.
        assert recovered[0].startswith("operation=throttle.recovered down_for=")
        assert " failed=6:" in recovered[0]

        other = account()
        throttle.failed(other, address)
        assert list(redis.scan_iter(match=f"{prefix}:*"))  # counted in Redis again

        throttle.succeeded(user, address)
        assert throttle.retry_after(user, address) == 0
    finally:
        forwarder.close()


def test_on_sentinel_the_throttle_counts_on_the_master_in_the_urls_database(
    sentinel, prefix, account, client
):
    url = sentinel.url(SENTINEL_DB)
    throttle = login_throttle(url, prefix, outage=StorageMustAnswer())
    master = sentinel.server(sentinel.master(), db=SENTINEL_DB)
    replica_port = ({sentinel.master_port, sentinel.replica_port} - {sentinel.master()}).pop()
    replica = sentinel.server(replica_port, db=SENTINEL_DB)
    try:
        fail(throttle, account(), client(), 5)
        assert list(master.scan_iter(match=f"{prefix}:*"))
        assert not list(sentinel.server(sentinel.master()).scan_iter(match=f"{prefix}:*"))  # not db 0
        assert master.wait(1, 2000) == 1  # replicated to the replica: what a failover keeps
        assert set(replica.scan_iter(match=f"{prefix}:*")) == set(master.scan_iter(match=f"{prefix}:*"))
    finally:
        delete_prefixed(master, f"{prefix}:")
        master.close()
        replica.close()


@pytest.mark.slow
def test_on_a_cluster_counts_and_blocks_move_with_their_slots(tmp_path, prefix, account, client):
    """Each of the throttle's keys moved to another master, one at a time, while the throttle
    reads and counts: nothing is lost, and it never falls back to counting in-process."""
    with redis_cluster(tmp_path) as cluster:
        throttle = login_throttle(cluster.url(), prefix, outage=StorageMustAnswer())
        victim, attacker = account(), client()
        fail(throttle, victim, attacker, 5)
        assert 0 < throttle.retry_after(victim, attacker) <= FIFTEEN_MINUTES
        keys = redis_client(cluster.url())
        try:
            stored = list(keys.scan_iter(match=f"{prefix}:*"))
            assert stored
            moved = 0
            for slot in sorted({keys.keyslot(key) for key in stored}):
                target = next(port for port in cluster.ports if port != cluster.owner(slot))
                checks = []

                def meanwhile() -> None:
                    checks.append(throttle.retry_after(victim, attacker))
                    throttle.failed(account(), client())  # and counts, elsewhere

                moved += cluster.migrate(slot, target, between=meanwhile)
                assert cluster.owner(slot) == target and all(checks), checks
            assert moved >= len(stored)
            assert 0 < throttle.retry_after(victim, attacker) <= FIFTEEN_MINUTES
            fail(throttle, account(), attacker, 2)  # and it goes on counting
        finally:
            delete_prefixed(keys, f"{prefix}:")
            keys.close()


def test_registrations_are_admitted_per_client_and_in_all(make_throttle, client):
    throttle = make_throttle(registrations_per_client="2/hour", registrations="3/minute")
    first, second = client(), client()
    assert [throttle.admit(first) for _ in range(2)] == [0, 0]
    assert 0 < throttle.admit(first) <= 3600  # this client's two are used
    assert throttle.admit(second) == 0
    assert 0 < throttle.admit(client()) <= 60  # three in all: a new client waits too
    assert throttle.admit(second) > 0  # refusals count nothing: still blocked, not further


def test_a_known_device_counts_against_itself_only(make_throttle, account, client):
    throttle, victim, device = make_throttle(), account(), "device-1"
    for _ in range(20):  # others' failures: the account is blocked for every unknown device
        throttle.failed(victim, client())
    assert throttle.retry_after(victim, client()) > 0
    assert throttle.retry_after(victim, client(), device) == 0
    behind_nat = client()
    for _ in range(50):  # failures on many accounts from one address block the address...
        throttle.failed(account(), behind_nat)
    assert throttle.retry_after(account(), behind_nat) > 0
    assert throttle.retry_after(victim, behind_nat, device) == 0  # ...not the known device behind it
    for _ in range(5):
        throttle.failed(victim, client(), device)
    assert throttle.retry_after(victim, client(), device) > 0
    assert throttle.retry_after(victim, client(), "device-2") == 0  # another known device
