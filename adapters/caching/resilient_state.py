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

import logging
from uuid import UUID

from adapters.caching import metrics
from adapters.caching.resilient import Resilient
from adapters.outage import OutageLog
from domain.session_state.model import Group, StateUnavailable, UserState
from ports.session_state import UserStateStore

log = logging.getLogger("user_service.state")


class ResilientUserStateStore(Resilient[UserStateStore, UUID]):
    unavailable_error = StateUnavailable
    errors_total = metrics.USER_STATE_ERRORS
    retry_thread = "user-state-delete-retry"

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
        self._pending.add(user_id)
        if not self._flush([user_id]):
            metrics.USER_STATE_PENDING_DELETES.inc()
            self._pending.retry()

    @property
    def pending_deletes(self) -> frozenset[UUID]:
        return self._pending.keys()

    # -- internals -------------------------------------------------------------------------

    def _flush(self, users: list[UUID] | None = None) -> bool:
        """Apply the pending deletes (of `users` only, when given); True when all of those
        landed. Stops at the first failure: the next would most likely wait out a timeout too."""
        for user, sequence in self._pending.batch(users).items():
            try:
                self._attempt("delete", self._inner.delete, user)
            except StateUnavailable:
                return False
            self._pending.settle({user: sequence})
        return True

    def _outage(self) -> OutageLog:
        return OutageLog(
            "user_state", log, what="the user state store", effect="sessions are checked against the database"
        )

    def _retried(self) -> None:
        log.info("operation=user_state.delete reason=retry: pending deletes applied")
