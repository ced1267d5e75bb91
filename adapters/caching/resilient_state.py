"""A UserStateStore decorator for a state server that may be down or slow (DESIGN §5).

A read that fails raises `StateUnavailable`, which the caller answers from the database; the
circuit breaker of the read caches spares reads the socket timeout while the server is down.

A write that fails may leave the entry older than the database it was meant to follow, so the
groups it carried are **retired** instead: written again at the same versions with no value
(state_codec.HOLLOW). Readers find them missing and fill them from the database; a write older
than the failed one is still refused, because the versions stay. Deleting the entry would lose
them: a write sent before the outage and run by the server once it answers again (a paused
server runs what its sockets hold), or another process's slow write, would then land on an
empty entry and bring back what the failed write replaced (a logged-out session, old roles).
A retirement that fails is kept and retried by a background thread, and until it lands this
process reads nothing of that user from the store; retirements are tried whatever the circuit
says, so they reach the server as soon as it answers.

Every failed call is counted (user_state_errors_total); the outage is logged by an OutageLog.
A read refused because that user's delete is pending is counted but not told to it: the server
may well be answering by then, the retry thread just has not run yet.
"""

from __future__ import annotations

import logging
import threading
from typing import Any
from uuid import UUID

from adapters.caching import metrics
from adapters.caching.resilient import Resilient
from adapters.caching.state_codec import hollow_state
from adapters.outage import OutageLog
from domain.session_state.model import Group, StateUnavailable, UserState
from ports.session_state import UserStateStore

log = logging.getLogger("user_service.state")


class _Delete:
    """What is pending for a user whose whole entry is to go (an explicit delete)."""


_DELETE = _Delete()


class ResilientUserStateStore(Resilient[UserStateStore, UUID]):
    unavailable_error = StateUnavailable
    errors_total = metrics.USER_STATE_ERRORS
    retry_thread = "user-state-retire-retry"

    def __init__(self, inner: UserStateStore, **options: Any) -> None:
        super().__init__(inner, **options)
        self._lock = threading.Lock()
        # Per pending user: the group versions to retire, or _DELETE for the whole entry.
        self._retiring: dict[UUID, dict[Group, int] | _Delete] = {}

    def read(self, user_id: UUID, *, reader: str) -> UserState | None:
        if user_id in self._pending:
            metrics.USER_STATE_ERRORS.labels("read").inc()
            raise StateUnavailable("a retirement of this user's groups is pending")
        if not self.breaker.allow():
            raise self._unavailable("read", StateUnavailable("circuit open"))
        return self._attempt("read", lambda: self._inner.read(user_id, reader=reader))

    def write(self, state: UserState) -> frozenset[Group]:
        """Never raises for the store: returns frozenset() when nothing could be written, and
        the groups of `state` are retired instead."""
        versions = {group: v.version for group, v in state.groups().items()}
        if state.user_id in self._pending and not self._flush([state.user_id]):
            metrics.USER_STATE_ERRORS.labels("write").inc()
            self._retire(state.user_id, versions, now=False)  # the flush just failed: the retrier's
            return frozenset()
        if not self.breaker.allow():
            self._unavailable("write", StateUnavailable("circuit open"))
        else:
            try:
                return self._attempt("write", self._inner.write, state)
            except StateUnavailable:
                pass
        self._retire(state.user_id, versions)
        return frozenset()

    def delete(self, user_id: UUID) -> None:
        """Never raises for the store: a failed delete is retried until the server takes it."""
        self._retire(user_id, _DELETE)

    @property
    def pending_users(self) -> frozenset[UUID]:
        """The users whose retirement (or delete) has not reached the store yet."""
        return self._pending.keys()

    # -- internals -------------------------------------------------------------------------

    def _retire(self, user_id: UUID, versions: dict[Group, int] | _Delete, *, now: bool = True) -> None:
        """Pend the retirement of these groups at these versions (or the entry's delete),
        merged with what is already pending, and try it at once unless `now` is False."""
        with self._lock:
            pending = self._retiring.get(user_id, {})
            if isinstance(versions, _Delete) or isinstance(pending, _Delete):
                merged: dict[Group, int] | _Delete = _DELETE
            else:
                merged = {g: max(v, pending.get(g, v)) for g, v in {**pending, **versions}.items()}
            self._retiring[user_id] = merged
            self._owe(user_id)
        if not now or not self._flush([user_id]):
            metrics.USER_STATE_PENDING_DELETES.inc()
            self._pending.retry()

    def _flush(self, users: list[UUID] | None = None) -> bool:
        """Apply the pending retirements (of `users` only, when given); True when all of those
        landed. Stops at the first failure: the next would most likely wait out a timeout too."""
        for user in self._pending.batch(users):
            with self._lock:  # what is pending and its sequence, read together
                sequence = self._pending.batch([user]).get(user)
                versions = self._retiring.get(user)
            if sequence is None or versions is None:
                continue  # applied by another thread meanwhile
            try:
                if isinstance(versions, _Delete):
                    self._attempt("delete", self._inner.delete, user)
                else:
                    self._attempt("retire", self._inner.write, hollow_state(user, versions))
            except StateUnavailable:
                return False
            with self._lock:
                self._pending.settle({user: sequence})  # a user that failed again stays pending
                if user not in self._pending:
                    self._retiring.pop(user, None)
        return True

    def _outage(self) -> OutageLog:
        return OutageLog(
            "user_state", log, what="the user state store", effect="sessions are checked against the database"
        )

    def _retried(self) -> None:
        log.info("operation=user_state.retire reason=retry: pending retirements applied")
