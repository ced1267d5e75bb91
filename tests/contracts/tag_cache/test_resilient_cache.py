"""ResilientCache in front of a healthy store: an invalidation still in flight in one thread is
no outage for another thread's read (the threaded contract test found it), as one deterministic
interleaving. The wrapper's failure paths are tests/unit/test_resilient_cache.py's."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from adapters.caching.resilient import CacheUnavailable, ResilientCache
from adapters.memory.tag_cache import InMemoryTagCache
from tests.support.clock import SettableClock


class Scripted(InMemoryTagCache):
    """An in-memory cache that runs hooks[n] inside its n-th invalidate call."""

    def __init__(self) -> None:
        super().__init__(SettableClock())
        self.hooks: dict[int, Callable[[], object]] = {}
        self.invalidations = 0

    def invalidate(self, *tags: str) -> None:
        self.invalidations += 1
        if (hook := self.hooks.get(self.invalidations)) is not None:
            hook()
        super().invalidate(*tags)


def test_a_read_during_other_threads_invalidations_on_a_healthy_store_does_not_fail():
    inner = Scripted()
    cache = ResilientCache(inner, errors=(ConnectionError,))
    release = threading.Event()
    read: list[object] = []

    def reader() -> None:  # thread B: a read while A's invalidation is in flight
        try:
            read.append(cache.get("user.1"))
        except CacheUnavailable as error:
            read.append(error)

    def during_as_invalidation() -> None:
        thread = threading.Thread(target=reader)
        thread.start()
        thread.join(5)

    def during_bs_flush() -> None:  # thread C: a third write's invalidation, still in flight
        threading.Thread(target=cache.invalidate, args=("user.2",), daemon=True).start()
        deadline = time.monotonic() + 5
        while "user.2" not in cache.pending_invalidations and time.monotonic() < deadline:
            time.sleep(0.001)

    inner.hooks = {1: during_as_invalidation, 2: during_bs_flush, 3: lambda: release.wait(5)}
    try:
        cache.invalidate("user.1")  # thread A
    finally:
        release.set()

    assert read == [None]  # a miss, as the store would answer
    assert cache.breaker.state == "closed"
