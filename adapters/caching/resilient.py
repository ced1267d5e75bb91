# Over 200 lines: the circuit breaker, the base both resilient decorators share, and the cache one.
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
With durable events (`durable=True`) the retry is the worker's, from the outbox, and survives
this process; here the failed invalidation is only the read guard, with no thread.
(Another process that can reach the server while this one cannot may still read such an entry
until the retry lands, at most the entry's TTL. With Redis on one host both usually lose it
together; with the local store, a write refused while reads still succeed, such as a full disk
or another program holding the file's write lock past the busy timeout, is that case.)

Every failed call is counted (cache_errors_total); the outage is logged by an OutageLog, as it
begins, once a minute while it lasts and as it ends. The breaker's own moves are DEBUG lines.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterable, Sequence
from contextlib import suppress
from typing import Any, ClassVar, Generic, TypeVar

from prometheus_client import Counter

from adapters.caching import metrics, repairs
from adapters.caching.pending import Pending
from adapters.outage import OutageLog
from ports.tag_cache import CacheEntry, TagCache, TagVersions

log = logging.getLogger("user_service.cache")
T = TypeVar("T")
S = TypeVar("S")  # the decorated store
K = TypeVar("K", bound=Hashable)  # what a failed write leaves pending


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
        """A failure opens the circuit after `fail_max` in a row; one while it is open (the
        trial's, or a repair's, which the circuit does not hold back) starts its wait again."""
        with self._lock:
            self._failures += 1
            if self._opened_at is not None or self._failures >= self._fail_max:
                if self._opened_at is None:
                    log.debug(
                        "operation=cache.breaker state=open failures=%d: calls fail at once "
                        "for %.1f s before a trial",
                        self._failures,
                        self._reset_timeout,
                    )
                self._opened_at, self._trial = self._monotonic(), False


EXIT_WAIT = 5.0  # seconds an exiting process goes on trying the repairs it still owes
_STORES: weakref.WeakSet[Resilient] = weakref.WeakSet()  # every resilient store of the process


@atexit.register
def _last_tries() -> None:
    """At exit (a worker recycled, a CLI command done) the retry threads die with the process,
    so the repairs still pending are tried for up to EXIT_WAIT seconds in all, and any left are
    said. A durable cache's are left out: the outbox applies them whatever this process does."""
    owed = repairs.Owed()
    for store in list(_STORES):
        if keys := store.owed_at_exit():
            owed.add(store, keys)
    if not owed.settle(EXIT_WAIT):
        for left in owed.outstanding():
            log.warning(
                "operation=cache.repairs_lost store=%s: exiting with writes the server never "
                "took; what they replaced may be served until it expires",
                type(left).__name__,
            )


class Resilient(ABC, Generic[S, K]):
    """What the resilient decorators share: calls to `inner` go through the circuit breaker; the
    inner store's `errors` (redis.RedisError) become `unavailable_error`, counted in
    `errors_total` by operation and told to the outage log, and any other exception is a bug and
    propagates; the keys whose write failed are kept in `_pending`, which a thread named
    `retry_thread` flushes by `_flush` every `retry_interval` seconds until none is left."""

    unavailable_error: ClassVar[type[Exception]]
    errors_total: ClassVar[Counter]
    retry_thread: ClassVar[str]

    def __init__(
        self,
        inner: S,
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
        reset_timeout). `outage`: where the outage is logged (else `_outage()`, every minute)."""
        self._inner = inner
        self._errors = errors
        self.breaker = breaker or CircuitBreaker(fail_max, reset_timeout)
        self.outage = outage or self._outage()
        self._pending: Pending[K] = Pending(
            self.retry_thread, retry_interval, flush=self._flush, done=self._retried
        )
        _STORES.add(self)

    @abstractmethod
    def _outage(self) -> OutageLog:
        """The outage log of this kind of store, when none is given."""

    @abstractmethod
    def _flush(self) -> bool:
        """Apply the pending writes; True when they landed."""

    @abstractmethod
    def _retried(self) -> None:
        """The retry thread has applied every pending write."""

    def repair(self) -> bool:
        """Try every pending write now, whatever the circuit says; True when none is left."""
        return not self._pending or self._flush()

    def pending_among(self, keys: Iterable[Hashable]) -> bool:
        return any(key in self._pending for key in keys)

    def owed_at_exit(self) -> frozenset[K]:
        """What this process alone would leave unapplied if it exited now."""
        return self._pending.keys()

    def _owe(self, *keys: K) -> None:
        """The writes of `keys` failed: pending here, and owed by the command under way."""
        self._pending.add(*keys)
        repairs.owe(self, keys)

    def _attempt(self, operation: str, function: Callable[..., T], *args: Any) -> T:
        return self.breaker.call(
            operation,
            function,
            *args,
            errors=self._errors,
            unavailable=self._unavailable,
            answered=self.outage.answered,
        )

    def _unavailable(self, operation: str, error: Exception) -> Exception:
        """Every failed call, tried or refused: counted, and told to the outage log."""
        self.errors_total.labels(operation).inc()
        self.outage.failed(operation, error)
        return error if isinstance(error, self.unavailable_error) else self.unavailable_error(str(error))


class ResilientCache(Resilient[TagCache, str]):
    """`durable`: the invalidations are events in the outbox as well, which a worker's
    subscriber applies again until the server takes them (app.wiring.events). Then a failed
    invalidation raises CacheUnavailable, for the worker to retry it from its queue, and this
    process keeps it only as its read guard, applied again before its next call to the server,
    with no retry thread: nothing is lost with the process."""

    unavailable_error = CacheUnavailable
    errors_total = metrics.ERRORS
    retry_thread = "cache-invalidation-retry"

    def __init__(self, inner: TagCache, *, durable: bool = False, **options: Any) -> None:
        super().__init__(inner, **options)
        self._durable = durable

    def tag_versions(self, key: str, tags: Sequence[str]) -> dict[str, int]:
        return self._call("tag_versions", self._inner.tag_versions, key, tags)

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
        """Never raises unless `durable`: a failed invalidation is kept and retried until the
        server takes it. Only a failed one is pending: one still in flight is no reason for
        another thread's read to stop using the cache (the write it belongs to is not
        acknowledged yet)."""
        try:
            self._attempt("invalidate", self._inner.invalidate, *tags)
        except CacheUnavailable:
            self._owe(*tags)
            if self._durable:
                raise
            self._pending.retry()
            return
        if self._pending and not self._flush() and not self._durable:  # earlier failures
            self._pending.retry()

    @property
    def pending_invalidations(self) -> frozenset[str]:
        return self._pending.keys()

    def owed_at_exit(self) -> frozenset[str]:
        # Durable: the outbox applies them whatever this process does.
        return frozenset() if self._durable else self._pending.keys()

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

    def _flush(self) -> bool:
        """Apply the pending invalidations; True when none is left."""
        batch = self._pending.batch()
        if not batch:
            return True
        # Not gated by the breaker: an open circuit spares readers the wait, but a write's
        # invalidation must reach the server as soon as it answers, or other workers, whose
        # own circuits may well be closed, keep serving what the write replaced.
        try:
            self._attempt("invalidate", self._inner.invalidate, *batch)
        except CacheUnavailable:
            return False
        return self._pending.settle(batch)

    def _outage(self) -> OutageLog:
        return OutageLog("cache", log, what="the cache", effect="reads go to the database")

    def _retried(self) -> None:
        metrics.INVALIDATION_RETRIES.inc()
        log.info("operation=cache.invalidation reason=retry: pending invalidations applied")
