"""ResilientCache: failures become CacheUnavailable, the breaker stops waiting on a dead cache,
and failed invalidations are retried, never forgotten (the real-Redis outage is in
tests/integration/test_cache_outage.py)."""

from __future__ import annotations

import threading
import time

import pytest

from adapters.caching.pending import Pending
from adapters.caching.read_through import Policy, ReadThrough
from adapters.caching.resilient import CacheUnavailable, CircuitBreaker, ResilientCache, _last_tries
from adapters.memory.tag_cache import InMemoryTagCache


class Down(Exception):
    pass


class Flaky:
    """A TagCache that fails every call while `down`, counting the calls that reached it."""

    def __init__(self) -> None:
        self.inner = InMemoryTagCache()
        self.down = False
        self.calls = 0

    def __getattr__(self, name: str):
        method = getattr(self.inner, name)

        def call(*args, **kwargs):
            self.calls += 1
            if self.down:
                raise Down(name)
            return method(*args, **kwargs)

        return call


def resilient(flaky: Flaky, **options) -> ResilientCache:
    defaults = {"fail_max": 2, "reset_timeout": 0.2, "retry_interval": 0.02}
    return ResilientCache(flaky, errors=(Down,), **{**defaults, **options})  # type: ignore[arg-type]


def failing_reads(cache: ResilientCache, times: int) -> None:
    for _ in range(times):
        with pytest.raises(CacheUnavailable):
            cache.get("k")


def test_failures_become_cache_unavailable_and_the_breaker_stops_calling() -> None:
    flaky = Flaky()
    cache = resilient(flaky)
    flaky.down = True
    failing_reads(cache, 2)
    calls = flaky.calls
    failing_reads(cache, 10)
    assert flaky.calls == calls  # open: no call waits on the dead cache


def test_the_breaker_closes_again_after_a_successful_trial() -> None:
    flaky = Flaky()
    cache = resilient(flaky)
    flaky.down = True
    failing_reads(cache, 3)
    flaky.down = False
    time.sleep(0.25)
    assert cache.get("k") is None
    assert cache.set("k", b"v", ttl=10, versions={}) and cache.get("k").value == b"v"


def test_reads_go_to_the_source_while_the_cache_is_down() -> None:
    flaky = Flaky()
    reads = ReadThrough(resilient(flaky))
    flaky.down = True
    loads = []
    for _ in range(5):
        assert reads.fetch("k", ("t",), Policy("p", 10), lambda: loads.append(1) or b"db") == b"db"
    assert len(loads) == 5


def test_a_failed_invalidation_is_retried_and_hides_the_entry_once_the_cache_is_back() -> None:
    flaky = Flaky()
    cache = resilient(flaky, retry_interval=10)  # only the flush-before-use can apply it here
    cache.set("k", b"old", ttl=60, versions=cache.tag_versions("k", ["t"]))
    flaky.down = True
    cache.invalidate("t")  # never raises: the write it follows has committed
    assert cache.pending_invalidations == {"t"}
    flaky.down = False
    time.sleep(0.25)  # the breaker's reset timeout
    assert cache.get("k") is None  # the pending invalidation was applied first
    assert cache.pending_invalidations == frozenset()


def test_the_retry_thread_applies_pending_invalidations_without_any_other_call() -> None:
    flaky = Flaky()
    cache = resilient(flaky, reset_timeout=0.05)
    peer = flaky.inner  # another worker reading the same server
    cache.set("k", b"old", ttl=60, versions=cache.tag_versions("k", ["t"]))
    flaky.down = True
    cache.invalidate("t")
    assert peer.get("k") is not None  # the server never heard of it yet
    flaky.down = False
    deadline = time.monotonic() + 5
    while cache.pending_invalidations and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cache.pending_invalidations == frozenset()
    assert peer.get("k") is None


def test_while_invalidations_are_pending_nothing_is_read_or_stored() -> None:
    flaky = Flaky()
    cache = resilient(flaky, fail_max=100, retry_interval=10)
    cache.set("k", b"old", ttl=60, versions=cache.tag_versions("k", ["t"]))
    flaky.down = True
    cache.invalidate("t")
    flaky.down = False
    flaky.inner.invalidate = lambda *tags: (_ for _ in ()).throw(Down("still failing"))  # type: ignore
    with pytest.raises(CacheUnavailable):
        cache.get("k")  # the old entry is never served while its invalidation is pending
    with pytest.raises(CacheUnavailable):
        cache.set("k", b"older", ttl=60, versions={})


def test_concurrent_invalidations_during_an_outage_are_all_applied() -> None:
    flaky = Flaky()
    cache = resilient(flaky, fail_max=1000, retry_interval=0.01)
    flaky.down = True
    threads = [threading.Thread(target=cache.invalidate, args=(f"t{i}",)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    flaky.down = False
    deadline = time.monotonic() + 5
    while cache.pending_invalidations and time.monotonic() < deadline:
        time.sleep(0.01)
    assert flaky.inner.tag_versions("k", [f"t{i}" for i in range(20)]) == {f"t{i}": 1 for i in range(20)}


class Slow(Flaky):
    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def __getattr__(self, name: str):
        call = super().__getattr__(name)

        def slow(*args, **kwargs):
            time.sleep(self.seconds)
            return call(*args, **kwargs)

        return slow


def test_threads_reach_the_cache_in_parallel_through_the_breaker() -> None:
    cache = resilient(Slow(0.1))
    threads = [threading.Thread(target=cache.get, args=("k",)) for _ in range(8)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert time.perf_counter() - started < 0.4  # one at a time would take 0.8 s


def test_half_open_lets_exactly_one_trial_through() -> None:
    flaky = Flaky()
    cache = resilient(flaky, fail_max=1, reset_timeout=0.05)
    flaky.down = True
    with pytest.raises(CacheUnavailable):
        cache.get("k")
    time.sleep(0.06)
    assert cache.breaker.allow()  # the trial
    assert not cache.breaker.allow()  # nobody else while it runs
    cache.breaker.failed()  # the trial failed: open again, for a whole reset_timeout
    assert not cache.breaker.allow()
    time.sleep(0.06)
    flaky.down = False
    assert cache.get("k") is None and cache.breaker.state == "closed"


def test_a_callers_own_error_does_not_wedge_the_breaker_half_open() -> None:
    flaky = Flaky()
    cache = resilient(flaky, fail_max=1, reset_timeout=0.05)
    flaky.down = True
    with pytest.raises(CacheUnavailable):
        cache.get("k")
    time.sleep(0.06)
    flaky.down = False
    with pytest.raises(ValueError):
        cache.set("k", b"v", ttl=0, versions={})  # a bad ttl: the caller's bug, not an outage
    assert cache.breaker.state == "closed"


def test_an_open_circuit_does_not_hold_back_a_writes_invalidation() -> None:
    """Readers skip the cache while the circuit is open; an invalidation still goes out at once,
    since other workers (whose circuits are closed) would otherwise serve what the write replaced."""
    flaky = Flaky()
    cache = resilient(flaky, reset_timeout=60)
    flaky.down = True
    failing_reads(cache, 2)
    flaky.down = False  # the server is back, the circuit is still open
    cache.invalidate("t")
    assert flaky.inner.tag_versions("k", ["t"]) == {"t": 1}
    assert cache.pending_invalidations == frozenset()


def test_a_lease_is_released_when_the_check_after_taking_it_fails() -> None:
    class FailingSecondGet(InMemoryTagCache):
        gets = 0

        def get(self, key):
            self.gets += 1
            if self.gets == 2:
                raise CacheUnavailable("timeout")
            return super().get(key)

    cache = FailingSecondGet()
    reads = ReadThrough(cache)
    assert reads.fetch("k", ("t",), Policy("p", 10), lambda: b"db") == b"db"
    assert cache.share_store().acquire("k", 5)  # nobody holds it any more


def test_a_key_that_fails_again_while_a_flush_applies_it_stays_pending() -> None:
    pending: Pending[str] = Pending("test-retry", 60, flush=lambda: True, done=lambda: None)
    pending.add("a", "b")
    batch = pending.batch()
    pending.add("a")  # another thread's try failed after the flush read the batch
    assert not pending.settle(batch)
    assert pending.keys() == {"a"} and "a" in pending and "b" not in pending
    assert pending.batch(["b"]) == {}
    assert pending.settle(pending.batch(["a"]))
    assert not pending


def test_with_durable_events_a_failed_invalidation_raises_and_only_guards_reads() -> None:
    flaky = Flaky()
    cache = resilient(flaky, durable=True)
    retrying = {t for t in threading.enumerate() if t.name == "cache-invalidation-retry"}  # others'
    cache.set("k", b"old", ttl=60, versions=cache.tag_versions("k", ["t"]))
    flaky.down = True
    with pytest.raises(CacheUnavailable):  # for the worker to retry it from its queue
        cache.invalidate("t")
    assert cache.pending_invalidations == {"t"}  # this process's read guard
    flaky.down = False
    time.sleep(0.1)
    assert cache.pending_invalidations == {"t"}  # no thread retries it from memory
    assert {t for t in threading.enumerate() if t.name == "cache-invalidation-retry"} <= retrying
    assert cache.get("k") is None  # applied again before the read
    assert cache.pending_invalidations == frozenset()


def test_a_failure_while_the_circuit_is_open_restarts_its_wait_for_a_trial() -> None:
    # A repair's try is not held back by the circuit: when it finds the server still down, the
    # readers need not send a trial of their own.
    now = [0.0]
    breaker = CircuitBreaker(2, 1.0, monotonic=lambda: now[0])
    breaker.failed()
    breaker.failed()
    assert not breaker.allow()
    now[0] = 0.9
    breaker.failed()  # e.g. a pending invalidation tried again
    now[0] = 1.5
    assert not breaker.allow(), "a trial 1.5 s after the circuit opened, 0.6 s after the last failure"
    now[0] = 2.0
    assert breaker.allow()  # the trial
    assert not breaker.allow()  # only one
    breaker.succeeded()
    assert breaker.allow() and breaker.state == "closed"


def test_an_exiting_process_tries_the_repairs_it_still_owes(caplog: pytest.LogCaptureFixture) -> None:
    flaky = Flaky()
    cache = resilient(flaky, retry_interval=60)  # no background retry within the test
    flaky.down = True
    cache.invalidate("user.1")
    assert cache.pending_invalidations == {"user.1"}
    _last_tries()  # still down: said, at WARNING
    assert "operation=cache.repairs_lost store=ResilientCache:" in caplog.text
    flaky.down = False
    _last_tries()
    assert not cache.pending_invalidations
    assert cache.tag_versions("k", ["user.1"])["user.1"] > 0
