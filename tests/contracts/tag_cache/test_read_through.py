"""ReadThrough over both TagCache adapters: loads, markers, no stale set (I6), XFetch, leases."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable

import pytest
from prometheus_client import REGISTRY

from adapters.caching.read_through import SAMPLE_EVERY, Policy, ReadThrough
from ports.tag_cache import CacheEntry
from tests.contracts.tag_cache.conftest import Backend

PLAIN = Policy("test_plain", ttl=60)
MARKED = Policy("test_marked", ttl=60, missing_ttl=5)
XFETCH = Policy("test_xfetch", ttl=60, beta=1.0)
TAGS = ("t", "t.1")


class Source:
    """The source of truth, counting loads; `during_load` runs inside a load (interleavings)."""

    def __init__(self, value: bytes | None = b"v1") -> None:
        self.value = value
        self.loads = 0
        self.during_load: Callable[[], None] | None = None

    def __call__(self) -> bytes | None:
        self.loads += 1
        value = self.value
        if self.during_load is not None:
            hook, self.during_load = self.during_load, None
            hook()
        return value


def counter(name: str, policy: str) -> float:
    return REGISTRY.get_sample_value(f"cache_{name}_total", {"policy": policy}) or 0.0


@pytest.fixture
def reads(backend: Backend) -> ReadThrough:
    return ReadThrough(backend.cache, clock=backend.now, lease_ttl=2.0, poll_interval=0.001)


def test_a_miss_loads_and_stores_then_reads_hit(reads: ReadThrough) -> None:
    source = Source()
    hits, misses = counter("hits", PLAIN.name), counter("misses", PLAIN.name)
    assert reads.fetch("k", TAGS, PLAIN, source) == b"v1"
    assert reads.fetch("k", TAGS, PLAIN, source) == b"v1"
    assert source.loads == 1
    assert counter("misses", PLAIN.name) - misses == 1 and counter("hits", PLAIN.name) - hits == 1


def test_an_invalidated_tag_makes_the_next_read_load_again(reads: ReadThrough, backend: Backend) -> None:
    source = Source()
    reads.fetch("k", TAGS, PLAIN, source)
    source.value = b"v2"
    backend.peer.invalidate("t.1")
    assert reads.fetch("k", TAGS, PLAIN, source) == b"v2"
    assert source.loads == 2


def test_not_found_is_cached_only_by_policies_with_a_marker(reads: ReadThrough, backend: Backend) -> None:
    unmarked = Source(None)
    assert reads.fetch("a", TAGS, PLAIN, unmarked) is None
    assert reads.fetch("a", TAGS, PLAIN, unmarked) is None
    assert unmarked.loads == 2

    marked = Source(None)
    assert reads.fetch("b", TAGS, MARKED, marked) is None
    assert reads.fetch("b", TAGS, MARKED, marked) is None
    assert marked.loads == 1
    marked.value = b"now-exists"
    backend.peer.invalidate("t.1")  # e.g. UserRegistered invalidates the email's lookup key
    assert reads.fetch("b", TAGS, MARKED, marked) == b"now-exists"


def test_the_marker_expires_after_its_own_ttl(memory_backend: Backend) -> None:
    # On the settable clock: on Redis this would sleep for the marker's ttl.
    reads = ReadThrough(memory_backend.cache, clock=memory_backend.now)
    source = Source(None)
    reads.fetch("b", TAGS, MARKED, source)
    memory_backend.advance(MARKED.missing_ttl + 0.001)
    source.value = b"found"
    assert reads.fetch("b", TAGS, MARKED, source) == b"found"


def test_no_stale_set_a_reader_that_loaded_before_a_write_cannot_store_after_it(
    reads: ReadThrough, backend: Backend
) -> None:
    """I6: the reader loads v1; meanwhile the writer commits v2 and invalidates; the reader's
    store of v1 is refused, and the next read returns v2."""
    source = Source(b"v1")

    def writer_commits_and_invalidates() -> None:
        source.value = b"v2"
        backend.peer.invalidate("t.1")

    source.during_load = writer_commits_and_invalidates
    assert reads.fetch("k", TAGS, PLAIN, source) == b"v1"  # what it read, served to its own caller
    assert reads.fetch("k", TAGS, PLAIN, source) == b"v2"
    assert backend.cache.get("k").value == b"v2"


def test_xfetch_probability_is_exp_of_minus_remaining_over_delta_beta() -> None:
    """P(recompute) = exp(-(expiry - now) / (delta * beta)): 0 long before expiry, near 1 at it."""
    rng = random.Random(7)
    reads = ReadThrough(None, clock=lambda: 100.0, random=rng.random)  # type: ignore[arg-type]
    entry = CacheEntry(b"x", expires_at=101.0, delta=0.5)
    trials = 20_000
    due = sum(reads.due(entry, Policy("p", 60, beta=1.0)) for _ in range(trials)) / trials
    assert due == pytest.approx(0.1353, abs=0.01)  # exp(-2)
    doubled = sum(reads.due(entry, Policy("p", 60, beta=2.0)) for _ in range(trials)) / trials
    assert doubled == pytest.approx(0.3679, abs=0.01)  # exp(-1)
    assert not any(reads.due(entry, Policy("p", 60)) for _ in range(1000))  # beta 0: plain TTL
    expired = CacheEntry(b"x", expires_at=100.0, delta=0.5)
    assert all(reads.due(expired, Policy("p", 60, beta=1.0)) for _ in range(1000))


def slow_to_compute(backend: Backend, value: bytes) -> None:
    """An entry that took 100 s to compute: XFetch makes it due early with a high draw."""
    backend.cache.set("k", value, ttl=60, versions=backend.cache.tag_versions("k", TAGS), delta=100)


def test_an_entry_due_early_is_recomputed_by_the_lease_holder(backend: Backend) -> None:
    always = ReadThrough(backend.cache, clock=backend.now, random=lambda: 1 - 1e-15)
    source = Source(b"v1")
    slow_to_compute(backend, b"v1")
    source.value = b"v2"
    recomputes = counter("early_recomputes", XFETCH.name)
    assert always.fetch("k", TAGS, XFETCH, source) == b"v2"
    assert source.loads == 1 and counter("early_recomputes", XFETCH.name) - recomputes == 1
    never = ReadThrough(backend.cache, clock=backend.now, random=lambda: 0.0)
    assert never.fetch("k", TAGS, XFETCH, source) == b"v2" and source.loads == 1


def test_while_another_recomputes_early_the_live_entry_is_served(backend: Backend) -> None:
    always = ReadThrough(backend.cache, clock=backend.now, random=lambda: 1 - 1e-15)
    source = Source(b"v2")
    slow_to_compute(backend, b"v1")
    assert backend.peer.acquire("k", 5)  # another worker is recomputing it
    stale = counter("stale_served", XFETCH.name)
    assert always.fetch("k", TAGS, XFETCH, source) == b"v1"
    assert source.loads == 0 and counter("stale_served", XFETCH.name) - stale == 1
    backend.peer.release("k")


def test_a_read_rolls_once_for_early_recompute(backend: Backend) -> None:
    """One XFetch draw per read of a live entry, none for a miss: the decision is made once."""
    draws: list[float] = []

    def draw() -> float:
        draws.append(1 - 1e-15)  # due
        return draws[-1]

    reads = ReadThrough(backend.cache, clock=backend.now, random=draw)
    source = Source(b"v1")
    assert reads.fetch("k", TAGS, XFETCH, source) == b"v1"
    assert draws == []
    slow_to_compute(backend, b"v1")
    source.value = b"v2"
    assert reads.fetch("k", TAGS, XFETCH, source) == b"v2"
    assert len(draws) == 1 and source.loads == 2


def test_a_waiter_gets_the_value_the_lease_holder_stores(reads: ReadThrough, backend: Backend) -> None:
    assert backend.peer.acquire("k", 5)
    versions = backend.peer.tag_versions("k", TAGS)
    source = Source(b"loaded-by-waiter")
    result: list[bytes | None] = []
    waiter = threading.Thread(target=lambda: result.append(reads.fetch("k", TAGS, PLAIN, source)))
    waiter.start()
    threading.Event().wait(0.05)
    backend.peer.set("k", b"stored-by-holder", ttl=60, versions=versions)
    waiter.join(5)
    assert result == [b"stored-by-holder"] and source.loads == 0
    backend.peer.release("k")


def test_when_the_holders_store_is_refused_a_waiter_takes_over(reads: ReadThrough, backend: Backend) -> None:
    assert backend.peer.acquire("k", 5)
    source = Source(b"fresh")
    result: list[bytes | None] = []
    waiter = threading.Thread(target=lambda: result.append(reads.fetch("k", TAGS, PLAIN, source)))
    waiter.start()
    threading.Event().wait(0.05)
    backend.peer.release("k")  # the holder's set was refused: a write invalidated meanwhile
    waiter.join(5)
    assert result == [b"fresh"] and source.loads == 1


def test_at_debug_level_one_read_in_sample_every_is_logged_by_kind_never_by_key(
    memory_backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    reads = ReadThrough(memory_backend.cache, clock=memory_backend.now)
    key = "user.email.0f3a9c"  # a key that stands for an email: it must not be logged
    with caplog.at_level(logging.INFO, logger="user_service.cache"):
        for _ in range(SAMPLE_EVERY):
            reads.fetch(key, TAGS, PLAIN, Source())
    assert not caplog.records  # above debug, nothing (and no sample counted)

    with caplog.at_level(logging.DEBUG, logger="user_service.cache"):
        for _ in range(2 * SAMPLE_EVERY):
            reads.fetch(key, TAGS, PLAIN, Source())
    lines = [record.getMessage() for record in caplog.records]
    assert lines == [f"operation=cache.read result=hit policy={PLAIN.name} sample=1/{SAMPLE_EVERY}"] * 2
    assert not any(key in line for line in lines)
