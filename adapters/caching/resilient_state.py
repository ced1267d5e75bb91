"""A UserStateStore decorator for a state server that may be down or slow (DESIGN §5).

A read that fails raises `StateUnavailable`, which the caller answers from the database; the
circuit breaker of the read caches spares reads the socket timeout while the server is down.

A write that fails may leave the entry older than the database it was meant to follow, so the
user's entry is deleted instead; a delete that fails is kept and retried by a background thread,
and until it lands this process reads nothing of that user from the store (another process that
can reach the server may still read the entry until then). Deletes are tried whatever the
circuit says: they must reach the server as soon as it answers.

Every failed call is counted (user_state_errors_total); the outage is logged by an OutageLog.
A read refused because that user's delete is pending is counted but not told to it: the server
may well be answering by then, the retry thread just has not run yet.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar
from uuid import UUID

from adapters.caching import metrics
from adapters.caching.resilient import CircuitBreaker, Retrier
from adapters.outage import OutageLog
from domain.session_state.model import Group, StateUnavailable, UserState
from ports.session_state import UserStateStore

log = logging.getLogger("user_service.state")
T = TypeVar("T")


class ResilientUserStateStore:
    """`errors` are the inner store's failures (redis.RedisError); any other exception is a
    bug and propagates."""

    def __init__(
        self,
        inner: UserStateStore,
        *,
        errors: tuple[type[Exception], ...],
        fail_max: int = 3,
        reset_timeout: float = 5.0,
        retry_interval: float = 1.0,
        breaker: CircuitBreaker | None = None,
        outage: OutageLog | None = None,
    ) -> None:
        """`breaker`: the one of the read cache on the same server, so that both stop
        waiting on it together (else one of its own from fail_max and reset_timeout).
        `outage`: where the outage is logged (else as "user_state", every minute)."""
        self._inner = inner
        self._errors = errors
        self.breaker = breaker or CircuitBreaker(fail_max, reset_timeout)
        self.outage = outage or OutageLog(
            "user_state", log, what="the user state store", effect="sessions are checked against the database"
        )
        self._lock = threading.Lock()
        self._pending: dict[UUID, int] = {}  # user -> sequence number of its latest failed delete
        self._sequence = itertools.count()
        self._retrier = Retrier(
            "user-state-delete-retry",
            retry_interval,
            flush=self._flush,
            pending=lambda: bool(self._pending),
            lock=self._lock,
            done=lambda: log.info("operation=user_state.delete reason=retry: pending deletes applied"),
        )

    @property
    def pending_deletes(self) -> frozenset[UUID]:
        with self._lock:
            return frozenset(self._pending)

    def read(self, user_id: UUID, *, reader: str) -> UserState | None:
        if user_id in self._pending:
            metrics.USER_STATE_ERRORS.labels("read").inc()
            raise StateUnavailable("a delete of this user's entry is pending")
        if not self.breaker.allow():
            raise self._unavailable("read", StateUnavailable("circuit open"))
        return self._attempt("read", lambda: self._inner.read(user_id, reader=reader))

    def write(self, state: UserState) -> frozenset[Group]:
        """Never raises for the store: returns frozenset() when nothing could be written."""
        if state.user_id in self._pending:
            metrics.USER_STATE_ERRORS.labels("write").inc()
        elif not self.breaker.allow():
            self._unavailable("write", StateUnavailable("circuit open"))
        else:
            try:
                return self._attempt("write", self._inner.write, state)
            except StateUnavailable:
                pass
        self.delete(state.user_id)
        return frozenset()

    def delete(self, user_id: UUID) -> None:
        """Never raises for the store: a failed delete is retried until the server takes it."""
        with self._lock:
            self._pending[user_id] = next(self._sequence)
        if not self._flush([user_id]):
            metrics.USER_STATE_PENDING_DELETES.inc()
            self._retrier.start()

    # -- internals -------------------------------------------------------------------------

    def _attempt(self, operation: str, function: Callable[..., T], *args: Any) -> T:
        return self.breaker.call(
            operation,
            function,
            *args,
            errors=self._errors,
            unavailable=self._unavailable,
            answered=self.outage.answered,
        )

    def _unavailable(self, operation: str, error: Exception) -> StateUnavailable:
        """A failed call, tried or refused by the circuit: counted, and told to the outage log."""
        metrics.USER_STATE_ERRORS.labels(operation).inc()
        self.outage.failed(operation, error)
        return error if isinstance(error, StateUnavailable) else StateUnavailable(str(error))

    def _flush(self, users: list[UUID] | None = None) -> bool:
        """Apply the pending deletes (of `users` only, when given); True when all of those
        landed. Stops at the first failure: the next would most likely wait out a timeout too."""
        with self._lock:
            wanted = self._pending if users is None else users
            batch = {user: self._pending[user] for user in wanted if user in self._pending}
        for user, sequence in batch.items():
            try:
                self._attempt("delete", self._inner.delete, user)
            except StateUnavailable:
                return False
            with self._lock:
                if self._pending.get(user) == sequence:  # not failed again since this try began
                    del self._pending[user]
        return True
