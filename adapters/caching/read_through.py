"""Read-through caching with the guarantees of DESIGN §5, over any TagCache.

* No stale set: the tag versions are read before the source and the store is conditional on
  them, so a value loaded before a write committed is never stored after the write invalidated.
* Stampede: one recompute lease per key across every process sharing the cache. On a miss the
  lease holder loads; the others poll the cache for the value it stores and so wait no longer
  than that one load (a value may not be served stale after an invalidation: read-your-writes).
* XFetch (Vattani et al., "Optimal probabilistic cache stampede prevention", 2015): a policy
  with `beta > 0` recomputes a live entry early with a probability that grows as expiry nears
  and with the time the value took to compute; while one reader recomputes, the others keep
  serving the live entry.
* Outage: when the cache raises CacheUnavailable the value comes from the source, unstored.

At debug level, one read in SAMPLE_EVERY is logged (`operation=cache.read result=hit|miss
policy=<kind>`): the policy names the key's kind (user_by_id, user_by_email, user_collection),
never the key, which may stand for an email. The counters (cache_hits_total, ...) count them all.

Values are bytes; `b""` is reserved for the "not found" marker of policies that cache misses.
"""

from __future__ import annotations

import itertools
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass

from adapters.caching import metrics
from adapters.caching.resilient import CacheUnavailable
from ports.tag_cache import CacheEntry, TagCache

log = logging.getLogger("user_service.cache")

MISSING = b""
SAMPLE_EVERY = 64  # reads a debug line stands for


@dataclass(frozen=True)
class Policy:
    name: str  # metrics label and log field
    ttl: float
    beta: float = 0.0  # XFetch weight; 0 means plain TTL
    missing_ttl: float | None = None  # how long "not found" is cached; None: not cached


class ReadThrough:
    def __init__(
        self,
        cache: TagCache,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = random.random,
        lease_ttl: float = 5.0,
        poll_interval: float = 0.002,
    ) -> None:
        self.cache = cache
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self._random = random
        self._lease_ttl = lease_ttl
        self._poll_interval = poll_interval
        self._reads = itertools.count()  # its next() is one step: threads agree on the sample

    def due(self, entry: CacheEntry, policy: Policy) -> bool:
        """XFetch: recompute when now - delta * beta * ln(U) >= expiry, U uniform on (0, 1]."""
        if policy.beta <= 0:
            return False
        u = 1.0 - self._random()  # (0, 1]: log(0) is undefined
        return self._clock() - entry.delta * policy.beta * math.log(u) >= entry.expires_at

    def fetch(
        self, key: str, tags: Sequence[str], policy: Policy, load: Callable[[], bytes | None]
    ) -> bytes | None:
        """The value under `key`, loading it with `load` (None: not found) when needed."""
        try:
            entry = self.cache.get(key)
        except CacheUnavailable:
            return load()
        if entry is not None:
            if self.due(entry, policy):
                return self._recompute_early(key, tags, policy, load, entry)
            metrics.HITS.labels(policy.name).inc()
            self._sample("hit", policy)
            return entry.value or None
        metrics.MISSES.labels(policy.name).inc()
        self._sample("miss", policy)
        try:
            return self._load_once(key, tags, policy, load)
        except CacheUnavailable:
            return load()

    # -- internals -------------------------------------------------------------------------

    def _sample(self, result: str, policy: Policy) -> None:
        if log.isEnabledFor(logging.DEBUG) and next(self._reads) % SAMPLE_EVERY == 0:
            log.debug(
                "operation=cache.read result=%s policy=%s sample=1/%d", result, policy.name, SAMPLE_EVERY
            )

    def _recompute_early(
        self,
        key: str,
        tags: Sequence[str],
        policy: Policy,
        load: Callable[[], bytes | None],
        entry: CacheEntry,
    ) -> bytes | None:
        try:
            if self.cache.acquire(key, self._lease_ttl):
                metrics.EARLY_RECOMPUTES.labels(policy.name).inc()
                return self._load_and_store(key, tags, policy, load)
        except CacheUnavailable:
            pass
        metrics.STALE_SERVED.labels(policy.name).inc()  # another reader is recomputing it
        return entry.value or None

    def _load_once(
        self, key: str, tags: Sequence[str], policy: Policy, load: Callable[[], bytes | None]
    ) -> bytes | None:
        deadline = self._monotonic() + self._lease_ttl
        while not self.cache.acquire(key, self._lease_ttl):
            # Another reader is loading this key: wait for what it stores. If its store was
            # refused (a write invalidated meanwhile) its lease ends and one waiter takes over.
            self._sleep(self._poll_interval)
            if (entry := self.cache.get(key)) is not None:
                metrics.HITS.labels(policy.name).inc()
                return entry.value or None
            if self._monotonic() >= deadline:
                log.warning("operation=cache.lease key=%s: holder too slow, loading unshared", key)
                return load()
        # Between this reader's miss and its lease, another holder may have stored the value
        # and let go: look once more rather than load it a second time.
        try:
            entry = self.cache.get(key)
        except CacheUnavailable:
            self.cache.release(key)
            raise
        if entry is not None:
            self.cache.release(key)
            metrics.HITS.labels(policy.name).inc()
            return entry.value or None
        return self._load_and_store(key, tags, policy, load)

    def _load_and_store(
        self, key: str, tags: Sequence[str], policy: Policy, load: Callable[[], bytes | None]
    ) -> bytes | None:
        """Holding the lease: snapshot the tag versions, load, store unless invalidated since."""
        try:
            versions = self.cache.tag_versions(key, tags)
            started = self._monotonic()
            value = load()
            delta = self._monotonic() - started
            ttl = policy.ttl if value is not None else policy.missing_ttl
            if ttl is not None:
                # Unstored when the cache fails: the next reader tries again.
                with suppress(CacheUnavailable):
                    self.cache.set(key, value or MISSING, ttl=ttl, versions=versions, delta=delta)
            return value
        finally:
            self.cache.release(key)
