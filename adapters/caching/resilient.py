# Over 200 lines: the breaker and the decorator that uses it, with the pending-invalidation retry.
"""A TagCache decorator for a cache server that may be down or slow (DESIGN §5, cache outage).

Every failure becomes `CacheUnavailable`, which the read-through layer answers by going to the
source of truth. A circuit breaker opens after `fail_max` consecutive failures and for
`reset_timeout` seconds fails calls at once instead of waiting out a socket timeout each; then
one trial call is let through (half-open), and its outcome closes or reopens the circuit.

The breaker is written here rather than taken from pybreaker because pybreaker holds its lock
for the whole protected call (pybreaker issue #55, open), which would make every thread of a
worker wait for every other thread's Redis round trip.

Invalidations must not be forgotten: one that fails is kept and retried, first by a background
thread and then before any other call, and until it is applied this process neither reads nor
writes entries, so it can never serve or store a value the lost invalidation should have hidden.
(Another process that can reach the server while this one cannot may still read such an entry
until the retry lands, at most the entry's TTL. With Redis on one host both usually lose it
together; with the local store, a write refused while reads still succeed, such as a full disk
or another program holding the file's write lock past the busy timeout, is that case.)

Every failed call is counted (cache_errors_total); the outage is logged by an OutageLog, as it
begins, once a minute while it lasts and as it ends. The breaker's own moves are DEBUG lines.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Any, TypeVar

from adapters.caching import metrics
from adapters.outage import OutageLog
from ports.tag_cache import CacheEntry, TagCache, TagVersions

log = logging.getLogger("user_service.cache")
T = TypeVar("T")


class CacheUnavailable(Exception):
    """The cache could not be used for this call; read from the source instead."""


class CircuitBreaker:
    """closed -> (fail_max consecutive failures) -> open -> (reset_timeout) -> half-open: one
    trial call; success closes, failure reopens. Only the state is locked, never the call.
    Its moves are logged at DEBUG only: its users' OutageLogs tell the outage."""

    def __init__(
        self, fail_max: int, reset_timeout: float, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._fail_max = fail_max
        self._reset_timeout = reset_timeout
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None  # None: closed
        self._trial = False  # a half-open trial call is under way

    @property
    def state(self) -> str:
        with self._lock:
            return "closed" if self._opened_at is None else "open"

    def allow(self) -> bool:
        if self._opened_at is None:  # the common case, without the lock
            return True
        with self._lock:
            if self._opened_at is None:
                return True
            if self._trial or self._monotonic() - self._opened_at < self._reset_timeout:
                return False
            self._trial = True
            return True

    def succeeded(self) -> None:
        if self._opened_at is None and self._failures == 0:
            return
        with self._lock:
            if self._opened_at is not None:
                log.debug("operation=cache.breaker state=closed: the server answers again")
            self._failures, self._opened_at, self._trial = 0, None, False

    def call(
        self,
        operation: str,
        function: Callable[..., T],
        *args: Any,
        errors: tuple[type[Exception], ...],
        unavailable: Callable[[str, Exception], Exception],
        answered: Callable[[], None],
    ) -> T:
        """Call the server, whatever the circuit says, and record how it went: one of `errors`
        is a failure, raised as `unavailable(operation, error)`; anything else means the server
        answered, and `answered()` is called (the error, if any, is the caller's)."""
        try:
            result = function(*args)
        except errors as error:
            self.failed()
            raise unavailable(operation, error) from error
        except BaseException:
            self.succeeded()
            answered()
            raise
        self.succeeded()
        answered()
        return result

    def failed(self) -> None:
        with self._lock:
            self._failures += 1
            if self._trial or (self._opened_at is None and self._failures >= self._fail_max):
                if self._opened_at is None:
                    log.debug(
                        "operation=cache.breaker state=open failures=%d: calls fail at once "
                        "for %.1f s before a trial",
                        self._failures,
                        self._reset_timeout,
                    )
                self._opened_at, self._trial = self._monotonic(), False


class Retrier:
    """A daemon thread that calls `flush` every `interval` seconds until it succeeds (True) and,
    under the owner's `lock`, nothing is `pending` any more; then `done`. Starting it while it
    runs does nothing. Shared by the stores that keep failed writes for later."""

    def __init__(
        self,
        name: str,
        interval: float,
        *,
        flush: Callable[[], bool],
        pending: Callable[[], bool],
        lock: threading.Lock,
        done: Callable[[], None],
    ) -> None:
        self._name, self._interval = name, interval
        self._flush, self._pending, self._lock, self._done = flush, pending, lock, done
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def _run(self) -> None:
        pause = threading.Event()
        while True:
            pause.wait(self._interval)
            if not self._flush():
                continue
            with self._lock:
                if self._pending():  # failed again meanwhile
                    continue
                self._thread = None
            self._done()
            return


class ResilientCache:
    def __init__(
        self,
        inner: TagCache,
        *,
        errors: tuple[type[Exception], ...],
        fail_max: int = 3,
        reset_timeout: float = 5.0,
        retry_interval: float = 1.0,
        breaker: CircuitBreaker | None = None,
        outage: OutageLog | None = None,
    ) -> None:
        """`breaker`: one shared with the other users of the same server, if any, so that
        they all stop waiting on it together (else one of its own from fail_max and
        reset_timeout). `outage`: where the outage is logged (else as "cache", every minute)."""
        self._inner = inner
        self._errors = errors
        self.breaker = breaker or CircuitBreaker(fail_max, reset_timeout)
        self.outage = outage or OutageLog("cache", log, what="the cache", effect="reads go to the database")
        self._lock = threading.Lock()
        self._pending: dict[str, int] = {}  # tag -> sequence number of its latest failed try
        self._sequence = itertools.count()
        self._retrier = Retrier(
            "cache-invalidation-retry",
            retry_interval,
            flush=self._flush,
            pending=lambda: bool(self._pending),
            lock=self._lock,
            done=self._retried,
        )

    @property
    def pending_invalidations(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._pending)

    def tag_versions(self, tags: Sequence[str]) -> dict[str, int]:
        return self._call("tag_versions", self._inner.tag_versions, tags)

    def get(self, key: str) -> CacheEntry | None:
        return self._call("get", self._inner.get, key)

    def set(self, key: str, value: bytes, *, ttl: float, versions: TagVersions, delta: float = 0.0) -> bool:
        return self._call("set", lambda: self._inner.set(key, value, ttl=ttl, versions=versions, delta=delta))

    def delete(self, *keys: str) -> None:
        self._call("delete", self._inner.delete, *keys)

    def acquire(self, key: str, ttl: float) -> bool:
        return self._call("acquire", self._inner.acquire, key, ttl)

    def release(self, key: str) -> None:
        with suppress(CacheUnavailable):  # the lease expires by itself
            self._call("release", self._inner.release, key)

    def invalidate(self, *tags: str) -> None:
        """Never raises: a failed invalidation is kept and retried until the server takes it.
        Only a failed one is pending: one still in flight is no reason for another thread's
        read to stop using the cache (the write it belongs to is not acknowledged yet)."""
        try:
            self._attempt("invalidate", self._inner.invalidate, *tags)
        except CacheUnavailable:
            with self._lock:
                for tag in tags:
                    self._pending[tag] = next(self._sequence)
            self._retrier.start()
            return
        if self._pending and not self._flush():  # earlier failures, while the server answers
            self._retrier.start()

    # -- internals -------------------------------------------------------------------------

    def _call(self, operation: str, function: Callable[..., T], *args: Any) -> T:
        # Pending invalidations first; a reader tries them only when the circuit lets it.
        if self._pending and not (self.breaker.allow() and self._flush()):
            raise self._unavailable(operation, CacheUnavailable("invalidations are still pending"))
        return self._guarded(operation, function, *args)

    def _guarded(self, operation: str, function: Callable[..., T], *args: Any) -> T:
        if not self.breaker.allow():
            raise self._unavailable(operation, CacheUnavailable("circuit open"))
        return self._attempt(operation, function, *args)

    def _attempt(self, operation: str, function: Callable[..., T], *args: Any) -> T:
        return self.breaker.call(
            operation,
            function,
            *args,
            errors=self._errors,
            unavailable=self._unavailable,
            answered=self.outage.answered,
        )

    def _unavailable(self, operation: str, error: Exception) -> CacheUnavailable:
        """Every failed call, tried or refused: counted, and told to the outage log."""
        metrics.ERRORS.labels(operation).inc()
        self.outage.failed(operation, error)
        return error if isinstance(error, CacheUnavailable) else CacheUnavailable(str(error))

    def _flush(self) -> bool:
        """Apply the pending invalidations; True when none is left."""
        with self._lock:
            batch = dict(self._pending)
        if not batch:
            return True
        # Not gated by the breaker: an open circuit spares readers the wait, but a write's
        # invalidation must reach the server as soon as it answers, or other workers, whose
        # own circuits may well be closed, keep serving what the write replaced.
        try:
            self._attempt("invalidate", self._inner.invalidate, *batch)
        except CacheUnavailable:
            return False
        with self._lock:
            for tag, sequence in batch.items():
                if self._pending.get(tag) == sequence:  # not failed again since this try began
                    del self._pending[tag]
            left = bool(self._pending)
        return not left

    @staticmethod
    def _retried() -> None:
        metrics.INVALIDATION_RETRIES.inc()
        log.info("operation=cache.invalidation reason=retry: pending invalidations applied")
