"""The session-state store: what authenticating a request needs, per user, in field groups."""

from __future__ import annotations

from typing import Protocol
from uuid import UUID

from domain.session_state.model import Group, UserState


class UserStateStore(Protocol):
    """The session-state cache: one entry per user, in field groups (see domain.session_state.model).

    Failures to reach the store raise `StateUnavailable` (from `read`); `write` and `delete`
    never raise for an unreachable store (an adapter that cannot write makes sure the entry it
    could not update is not served later: it removes it, or keeps retrying).
    """

    def read(self, user_id: UUID, *, reader: str) -> UserState | None:
        """The stored groups, or None when there is no entry. A read slides the entry's expiry
        to SLIDING_TTL from now, never past ABSOLUTE_TTL after the entry was created.
        `reader` names the caller in metrics (a miss is counted per reader)."""
        ...

    def write(self, state: UserState) -> frozenset[Group]:
        """Write every group present in `state`, atomically (all in one step), each only if
        no newer version of it is stored: a group whose stored version is greater than the
        one given is left as it is (an equal version is written again). Other groups are not
        touched. Creates the entry when there is none. Returns the groups written."""
        ...

    def delete(self, user_id: UUID) -> None: ...
