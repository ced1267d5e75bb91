"""DESIGN's cache-outage rule, against a redis-server that these tests start, pause and kill:

with Redis stopped or unreachable, reads still succeed from the database within the socket
timeout; a circuit breaker stops waiting on a dead Redis; failures are logged and counted;
invalidations that failed are retried so nothing is stale once Redis is back. A write is
acknowledged only once its invalidation and session-state write have landed
(app.acknowledgement): while Redis does not answer, a write that committed answers 503 after
CACHE_REPAIR_WAIT, and later ones are refused before they change anything.

Each test runs its own redis-server on a free port (no persistence) and a migrated SQLite file,
and leaves no process behind. The tests fail, never skip, when redis-server is missing.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import REGISTRY
from werkzeug.test import TestResponse

from adapters.caching import keys
from adapters.redis.tag_cache import RedisTagCache
from adapters.sqlalchemy.migrate import upgrade
from app.factory import create_app
from tests import factories
from tests.api.conftest import act_as, login
from tests.settings import TEST_ENV
from tests.support.servers import stop_process

SOCKET_TIMEOUT = 0.2
BREAKER_FAILURES = 3
BREAKER_RESET = 0.5
PREFIX = "us:"  # CACHE_PREFIX's default
# A request may wait out the socket timeout of a few cache operations (and a reconnection each)
# before the breaker opens; once it is open a request must not wait on Redis at all.
REQUEST_BOUND = 1.5
OPEN_BREAKER_BOUND = 0.1
REPAIR_WAIT = 1.0
# A write waits out REPAIR_WAIT for its repairs to land; each round of tries may wait out a
# socket timeout per store, the last one past the deadline.
WRITE_BOUND = REQUEST_BOUND + REPAIR_WAIT + 1.0
SAVED = "The change is saved, but the cache is out of reach"  # CacheBehind: committed, not acknowledged
REFUSED = "nothing was changed"  # CacheOutage: refused before the command ran
OPERATIONS = ("tag_versions", "get", "set", "delete", "acquire", "release", "invalidate")
RETRY_THREAD = "cache-invalidation-retry"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """redis-server processes on one port, one at a time: started, paused, resumed, killed and
    started again (as after a crash); every one of them is ended by `stop_all`."""

    def __init__(self, port: int, log_dir: Path) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self._log_dir = log_dir
        self._processes: list[subprocess.Popen] = []
        self._paused = False

    @property
    def process(self) -> subprocess.Popen:
        return self._processes[-1]

    def start(self) -> None:
        executable = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not os.access(executable, os.X_OK):
            pytest.fail(
                "redis-server was not found (not on PATH, nor /usr/bin/redis-server): the cache "
                "outage tests start their own Redis and never skip. Install it (apt-get install "
                "redis-server).",
                pytrace=False,
            )
        log_path = self._log_dir / f"redis-{len(self._processes)}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [executable, "--port", str(self.port), "--bind", "127.0.0.1"]
                + ["--save", "", "--appendonly", "no", "--daemonize", "no"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._processes.append(process)
        self._paused = False
        deadline = time.monotonic() + 10
        probe = redis.Redis.from_url(self.url, socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            while True:
                try:
                    if probe.ping():
                        return
                except redis.RedisError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        finally:
            probe.close()
        status = "exited with " + str(process.returncode) if process.poll() is not None else "is silent"
        stop_process(process)
        pytest.fail(
            f"redis-server on port {self.port} did not answer PING within 10 s ({status}); "
            f"its log:\n{log_path.read_text(errors='replace')[-2000:]}",
            pytrace=False,
        )

    def client(self) -> redis.Redis:
        """A client for the test's own checks (never call it while the server is paused)."""
        return redis.Redis.from_url(self.url, socket_timeout=1, socket_connect_timeout=1)

    def pause(self) -> None:
        """SIGSTOP: connections are still accepted by the kernel but never answered; data stays."""
        self.process.send_signal(signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)
        self._paused = False

    def kill(self) -> None:
        """SIGKILL: connections are refused and the data is gone."""
        self.process.kill()
        self.process.wait(5)

    def stop_all(self) -> None:
        if self._paused:
            self.resume()
        for process in self._processes:
            stop_process(process)


class _Relay:
    """One client connection through the partition and its connection to Redis."""

    def __init__(self, client: socket.socket, upstream: socket.socket, dead: bool) -> None:
        self.client = client
        self.upstream = upstream
        self.dead = dead  # cut off: what either side sends is dropped

    def close(self) -> None:
        for sock in (self.client, self.upstream):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes the pump blocked on it
            sock.close()


class Partition:
    """A TCP relay in front of Redis that can cut the network. While cut, connections are still
    accepted but what the clients send never reaches Redis and nothing comes back (a dropped
    route, unlike SIGSTOP, after which Redis still runs the commands its clients gave up on).
    Healing closes the cut-off connections, as a client would find them after a partition."""

    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"redis://127.0.0.1:{self._listener.getsockname()[1]}/0"
        self._lock = threading.Lock()
        self._cut = False
        self._relays: list[_Relay] = []
        self._threads = [threading.Thread(target=self._accept, name="test-partition", daemon=True)]
        self._threads[0].start()

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            for relay in self._relays:
                relay.dead = True

    def heal(self) -> None:
        with self._lock:
            self._cut = False
            dead = [relay for relay in self._relays if relay.dead]
            self._relays = [relay for relay in self._relays if not relay.dead]
        for relay in dead:
            relay.close()

    def close(self) -> None:
        with suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            relays, self._relays = self._relays, []
        for relay in relays:
            relay.close()
        for thread in list(self._threads):
            thread.join(5)
        assert not any(thread.is_alive() for thread in self._threads), "the partition relay is still running"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self._target_port), timeout=1)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                relay = _Relay(client, upstream, dead=self._cut)
                self._relays.append(relay)
                pumps = [
                    threading.Thread(
                        target=self._pump, args=(relay, a, b), name="test-partition", daemon=True
                    )
                    for a, b in ((client, upstream), (upstream, client))
                ]
                self._threads += pumps
            for pump in pumps:
                pump.start()

    @staticmethod
    def _pump(relay: _Relay, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if not relay.dead:
                    sink.sendall(data)
        except OSError:
            pass
        finally:
            relay.close()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(_free_port(), tmp_path)
    try:
        server.start()
        yield server
    finally:
        server.stop_all()


@pytest.fixture
def make_app(tmp_path: Path, redis_server: RedisServer) -> Iterator[Callable[..., Flask]]:
    """Apps on one SQLite file and the test's Redis (or `cache_url`, a way to it): each one
    another worker of the service."""
    database_url = f"sqlite:///{tmp_path / 'users.db'}"
    engines = []

    def make(cache_url: str | None = None) -> Flask:
        app = create_app(
            {
                **TEST_ENV,
                "DATABASE_URL": database_url,
                "CACHE_URL": cache_url or redis_server.url,
                "CACHE_SOCKET_TIMEOUT": str(SOCKET_TIMEOUT),
                "CACHE_BREAKER_FAILURES": str(BREAKER_FAILURES),
                "CACHE_BREAKER_RESET": str(BREAKER_RESET),
                "CACHE_REPAIR_WAIT": str(REPAIR_WAIT),
            }
        )
        engine = app.extensions["container"].storage.engine()
        if not engines:
            upgrade(engine)
        engines.append(engine)
        return app

    yield make
    for engine in engines:
        engine.dispose()


@pytest.fixture
def partition(redis_server: RedisServer) -> Iterator[Partition]:
    relay = Partition(redis_server.port)
    try:
        yield relay
    finally:
        relay.close()


@pytest.fixture
def cache_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="user_service.cache")
    return caplog


def timed(request: Callable[[], TestResponse]) -> tuple[TestResponse, float]:
    started = time.perf_counter()
    response = request()
    return response, time.perf_counter() - started


def register(client: FlaskClient, faker: Any) -> tuple[str, dict]:
    """A new user, logged in (its headers under "headers"); the client acts as them."""
    data = factories.registration(faker)
    response, elapsed = timed(lambda: client.post("/api/users", json=data))
    assert response.status_code == 201, response.get_json()
    assert elapsed < REQUEST_BOUND, f"registering took {elapsed:.3f} s"
    headers = login(client, data["email"], data["password"])
    act_as(client, headers)
    return response.headers["Location"], {
        **response.get_json(),
        "headers": headers,
        "password": data["password"],
    }


def get_initials(
    client: FlaskClient, url: str, bound: float = REQUEST_BOUND, as_user: dict | None = None
) -> tuple[str, float]:
    response, elapsed = timed(lambda: client.get(url, headers=as_user["headers"] if as_user else None))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert elapsed < bound, f"GET {url} took {elapsed:.3f} s (bound {bound} s)"
    return response.get_json()["initials"], elapsed


def other_initials(initials: str) -> str:
    return "ZZ" if initials != "ZZ" else "YY"


def cache_errors() -> float:
    values = (REGISTRY.get_sample_value("cache_errors_total", {"operation": op}) for op in OPERATIONS)
    return sum(value or 0.0 for value in values)


def state_errors() -> float:
    values = (
        REGISTRY.get_sample_value("user_state_errors_total", {"operation": op})
        for op in ("read", "write", "delete")
    )
    return sum(value or 0.0 for value in values)


def hits_by_id() -> float:
    return REGISTRY.get_sample_value("cache_hits_total", {"policy": "user_by_id"}) or 0.0


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The read cache's WARNING lines (the session state store logs its own outage)."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "user_service.cache" and r.levelno >= logging.WARNING
    ]


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.02)


def rounded(durations: list[float]) -> list[float]:
    return [round(duration, 3) for duration in durations]


def retry_threads() -> set[threading.Thread]:
    return {thread for thread in threading.enumerate() if thread.name == RETRY_THREAD}


def warm(client, url: str, initials: str) -> None:
    """GET twice: a miss that stores the user, then a hit (checked on the hit counter)."""
    assert get_initials(client, url)[0] == initials
    hits = hits_by_id()
    assert get_initials(client, url)[0] == initials
    assert hits_by_id() == hits + 1, "the second GET was not served from the cache"


def answered_503(response: TestResponse, detail: str) -> None:
    """A write not acknowledged: 503 with Retry-After, saying whether anything changed."""
    assert response.status_code == 503, response.get_data(as_text=True)
    assert detail in response.get_json()["detail"], response.get_json()
    assert int(response.headers["Retry-After"]) > 0


def sent_as_the_partition_heals(
    partition: Partition, request: Callable[[], TestResponse], failed: Callable[[], bool], what: str
) -> TestResponse:
    """Cut the partition, send `request` from another thread, and heal once its cache write has
    failed (`failed`) and it would have been answered had it not waited: within its wait, before
    the retry thread's turn. Its answer."""
    answers: list[TestResponse] = []
    partition.cut()
    thread = threading.Thread(target=lambda: answers.append(request()), name="test-request")
    thread.start()
    wait_until(failed, WRITE_BOUND, what)
    time.sleep(REPAIR_WAIT / 2)
    partition.heal()
    thread.join(WRITE_BOUND + 5)
    assert answers, "the request did not finish"
    return answers[0]


def test_paused_redis_is_waited_on_briefly_then_not_at_all_and_serves_nothing_stale_after(
    redis_server: RedisServer, make_app: Callable[..., Flask], faker: Any, cache_log: pytest.LogCaptureFixture
) -> None:
    threads_before = retry_threads()
    app = make_app()
    client = app.test_client()
    cache = app.extensions["container"].caching.cache()
    url, user = register(client, faker)
    key = PREFIX + keys.user(UUID(user["id"]))
    old, new = user["initials"], other_initials(user["initials"])
    admin = redis_server.client()

    warm(client, url, old)
    assert admin.exists(key), f"{key} was not stored in Redis"

    errors = cache_errors()
    cache_log.clear()
    redis_server.pause()

    # Committed, but its invalidation cannot land: not acknowledged.
    patched, elapsed = timed(lambda: client.patch(url, json={"initials": new}))
    answered_503(patched, SAVED)
    assert REPAIR_WAIT <= elapsed < WRITE_BOUND, f"PATCH took {elapsed:.3f} s"
    patch_wait = elapsed
    assert cache.pending_invalidations, "the failed invalidation was not kept for a retry"
    # The next write is refused before it runs: nothing changes.
    refused, elapsed = timed(lambda: client.patch(url, json={"initials": "QQ"}))
    answered_503(refused, REFUSED)
    assert elapsed < REQUEST_BOUND, f"the refused PATCH took {elapsed:.3f} s"

    # Each GET waits out a few socket timeouts at most, until the breaker opens.
    waits = []
    deadline = time.monotonic() + 5
    while cache.breaker.state != "open":
        assert time.monotonic() < deadline, f"the breaker did not open; GETs took {waits}"
        initials, elapsed = get_initials(client, url)
        assert initials == new, "a stale entry was served while Redis was paused"
        waits.append(elapsed)
    # Then no GET waits on Redis.
    fast = []
    for _ in range(3):
        initials, elapsed = get_initials(client, url, bound=OPEN_BREAKER_BOUND)
        assert initials == new
        fast.append(elapsed)
    print(f"paused Redis: PATCH {patch_wait:.3f} s, GETs {rounded(waits)} s, once open {rounded(fast)} s")

    assert cache_errors() >= errors + BREAKER_FAILURES
    assert [line.split(" ", 1)[0] for line in warnings(cache_log)] == ["operation=cache.unreachable"]
    assert cache.pending_invalidations

    redis_server.resume()
    wait_until(lambda: not cache.pending_invalidations, 5, "the pending invalidations were applied")
    assert get_initials(client, url)[0] == new
    another_worker = make_app().test_client()
    act_as(another_worker, user["headers"])
    assert get_initials(another_worker, url)[0] == new, "another worker was served the old entry"
    acknowledged = client.patch(url, json={"initials": "QQ"})
    assert acknowledged.status_code == 200, acknowledged.get_json()
    assert get_initials(another_worker, url)[0] == "QQ"
    wait_until(lambda: retry_threads() <= threads_before, 3, "the invalidation retry thread ended")
    admin.close()


def test_killed_redis_leaves_reads_to_the_database_refuses_writes_and_serves_again_once_restarted(
    redis_server: RedisServer, make_app: Callable[..., Flask], faker: Any, cache_log: pytest.LogCaptureFixture
) -> None:
    threads_before = retry_threads()
    app = make_app()
    client = app.test_client()
    cache = app.extensions["container"].caching.cache()
    url, user = register(client, faker)
    assert get_initials(client, url)[0] == user["initials"]
    hits = hits_by_id()
    assert get_initials(client, url)[0] == user["initials"]
    assert hits_by_id() == hits + 1, "the second GET was not served from the cache"

    errors = cache_errors()
    cache_log.clear()
    redis_server.kill()

    waits = []
    new = other_initials(user["initials"])
    patched, elapsed = timed(lambda: client.patch(url, json={"initials": new}))
    answered_503(patched, SAVED)  # committed; its invalidation kept for a retry
    assert elapsed < WRITE_BOUND, f"PATCH took {elapsed:.3f} s"
    waits.append(elapsed)
    assert cache.pending_invalidations
    data = factories.registration(faker)
    registered, elapsed = timed(lambda: client.post("/api/users", json=data))
    answered_503(registered, REFUSED)
    waits.append(elapsed)
    initials, elapsed = get_initials(client, url)
    assert initials == new  # from the database
    waits.append(elapsed)
    assert cache.breaker.state == "open"
    initials, elapsed = get_initials(client, url, bound=OPEN_BREAKER_BOUND)
    assert initials == new
    waits.append(elapsed)
    assert cache_errors() >= errors + BREAKER_FAILURES
    assert [line.split(" ", 1)[0] for line in warnings(cache_log)] == ["operation=cache.unreachable"]
    assert cache.pending_invalidations

    redis_server.start()  # a new, empty server on the same port, as after a crash and restart
    restarted = time.monotonic()
    admin = redis_server.client()
    time.sleep(BREAKER_RESET)
    key = PREFIX + keys.user(UUID(user["id"]))

    def served_from_cache() -> bool:
        assert get_initials(client, url)[0] == new
        hits = hits_by_id()
        assert get_initials(client, url)[0] == new
        return hits_by_id() == hits + 1 and bool(admin.exists(key))

    wait_until(served_from_cache, 5, "GETs were served from the restarted Redis")
    back_after = time.monotonic() - restarted
    assert not cache.pending_invalidations
    assert cache.breaker.state == "closed"
    down, up = warnings(cache_log)  # nothing in between: the outage lasted less than a minute
    assert down.startswith("operation=cache.unreachable call=") and " error=" in down
    assert up.startswith("operation=cache.recovered down_for=") and " failed=" in up
    # The refused registration changed nothing: the same one now succeeds.
    registered = client.post("/api/users", json=data)
    assert registered.status_code == 201, registered.get_json()
    print(f"killed Redis: requests took {rounded(waits)} s; cache serving {back_after:.3f} s after restart")
    wait_until(lambda: retry_threads() <= threads_before, 3, "the invalidation retry thread ended")
    admin.close()


def test_unreachable_redis_keeps_its_stale_entry_until_the_retried_invalidation_lands(
    redis_server: RedisServer,
    partition: Partition,
    make_app: Callable[..., Flask],
    faker: Any,
    cache_log: pytest.LogCaptureFixture,
) -> None:
    threads_before = retry_threads()
    app = make_app(partition.url)
    client = app.test_client()
    cache = app.extensions["container"].caching.cache()
    url, user = register(client, faker)
    key = keys.user(UUID(user["id"]))
    old, new = user["initials"], other_initials(user["initials"])
    admin = redis_server.client()
    direct = RedisTagCache(admin, PREFIX)  # what a worker that still reaches Redis reads

    warm(client, url, old)

    errors = cache_errors() + state_errors()
    cache_log.clear()
    partition.cut()
    patched, elapsed = timed(lambda: client.patch(url, json={"initials": new}))
    answered_503(patched, SAVED)  # not acknowledged: others may read either value
    assert elapsed < WRITE_BOUND, f"PATCH took {elapsed:.3f} s"
    waits = [elapsed]
    deadline = time.monotonic() + 5
    while cache.breaker.state != "open":
        assert time.monotonic() < deadline, f"the breaker did not open; requests took {rounded(waits)}"
        initials, elapsed = get_initials(client, url)
        assert initials == new
        waits.append(elapsed)
    assert get_initials(client, url, bound=OPEN_BREAKER_BOUND)[0] == new
    # The session state shares the breaker: its failures and the cache's opened it together.
    assert cache_errors() + state_errors() >= errors + BREAKER_FAILURES
    assert cache.pending_invalidations
    # The invalidation never reached Redis: its old entry is live there, the case under test.
    entry = direct.get(key)
    assert entry is not None and f'"{old}"'.encode() in entry.value, (
        "the old entry left Redis: nothing to test"
    )

    partition.heal()
    wait_until(lambda: not cache.pending_invalidations, 5, "the pending invalidations were applied")
    entry = direct.get(key)
    assert entry is None or f'"{new}"'.encode() in entry.value, "Redis still serves the old entry to others"
    assert get_initials(client, url)[0] == new
    assert get_initials(make_app().test_client(), url, as_user=user)[0] == new, (
        "another worker was served the old entry"
    )
    print(f"unreachable Redis: requests took {rounded(waits)} s")
    wait_until(lambda: retry_threads() <= threads_before, 3, "the invalidation retry thread ended")
    admin.close()


def test_a_write_acknowledged_as_the_partition_heals_shows_at_once_on_a_worker_that_reaches_redis(
    redis_server: RedisServer, partition: Partition, make_app: Callable[..., Flask], faker: Any
) -> None:
    """The window a retry leaves: the other worker reads Redis the moment it answers again, before
    the background retry runs. A write is answered only once its invalidation has landed, so
    whatever was acknowledged, the other worker shows."""
    app = make_app(partition.url)
    client, cache = app.test_client(), app.extensions["container"].caching.cache()
    url, user = register(client, faker)
    other_worker = make_app().test_client()  # reaches Redis directly
    new = other_initials(user["initials"])
    act_as(other_worker, user["headers"])
    warm(other_worker, url, user["initials"])  # the entry the write must replace

    patched = sent_as_the_partition_heals(
        partition,
        lambda: client.patch(url, json={"initials": new}),
        lambda: bool(cache.pending_invalidations),
        "the PATCH's invalidation failing",
    )
    assert patched.status_code == 200, patched.get_json()
    assert get_initials(other_worker, url)[0] == new, "an acknowledged write was not shown at once"


def test_sessions_are_checked_against_the_database_while_redis_is_down_and_nothing_stale_after(
    redis_server: RedisServer, make_app: Callable[..., Flask], faker: Any
) -> None:
    """A token is never accepted unchecked: without Redis the session is checked against the
    database, and a logout made meanwhile holds once Redis is back, on this worker and others."""
    app = make_app()
    client = app.test_client()
    url, user = register(client, faker)
    states = app.extensions["container"].caching.states()
    user_id = UUID(user["id"])
    other = login(client, user["email"], user["password"])  # a second device
    assert states.read(user_id, reader="test") is not None  # both sessions cached
    assert client.get("/api/auth/me", headers=other).status_code == 200

    redis_server.kill()
    assert get_initials(client, url)[0] == user["initials"]  # checked against the database
    logout, elapsed = timed(lambda: client.post("/api/auth/logout", headers=other))
    answered_503(logout, SAVED)  # the session is ended in the database, not yet in the state
    assert elapsed < WRITE_BOUND
    assert user_id in states.pending_users  # the groups it could not update are to be retired
    assert client.get("/api/auth/me", headers=other).status_code == 401
    assert client.get("/api/auth/me").status_code == 200  # the first device still works
    answered_503(client.post("/api/auth/logout"), REFUSED)
    assert client.get("/api/auth/me").status_code == 200  # that logout changed nothing

    redis_server.start()  # empty, as after a crash; the pending retirement lands
    wait_until(lambda: not states.pending_users, 5, "the pending retirement was applied")
    another_worker = make_app().test_client()
    for worker in (client, another_worker):
        assert worker.get("/api/auth/me", headers=other).status_code == 401
        assert worker.get("/api/auth/me", headers=user["headers"]).status_code == 200
    assert states.read(user_id, reader="test") is not None  # rebuilt from the database


def test_a_logout_during_a_partition_is_not_undone_by_the_entry_left_in_redis(
    redis_server: RedisServer, partition: Partition, make_app: Callable[..., Flask], faker: Any
) -> None:
    app = make_app(partition.url)
    client = app.test_client()
    url, user = register(client, faker)
    states = app.extensions["container"].caching.states()
    assert client.get("/api/auth/me").status_code == 200  # the state is in Redis

    partition.cut()
    answered_503(client.post("/api/auth/logout"), SAVED)
    assert client.get("/api/auth/me").status_code == 401  # this worker: the database says so
    partition.heal()
    wait_until(lambda: not states.pending_users, 5, "the pending retirement was applied")
    for worker in (client, make_app().test_client()):
        assert worker.get("/api/auth/me", headers=user["headers"]).status_code == 401


def test_a_logout_acknowledged_as_the_partition_heals_is_refused_at_once_by_a_worker_that_reaches_redis(
    redis_server: RedisServer, partition: Partition, make_app: Callable[..., Flask], faker: Any
) -> None:
    app = make_app(partition.url)
    client, states = app.test_client(), app.extensions["container"].caching.states()
    _, user = register(client, faker)
    other_worker = make_app().test_client()  # reaches Redis directly
    assert other_worker.get("/api/auth/me", headers=user["headers"]).status_code == 200  # state cached

    logout = sent_as_the_partition_heals(
        partition,
        lambda: client.post("/api/auth/logout"),
        lambda: bool(states.pending_users),
        "the logout's state write failing",
    )
    assert logout.status_code == 204
    assert other_worker.get("/api/auth/me", headers=user["headers"]).status_code == 401, (
        "a token was accepted after its logout was acknowledged"
    )
