"""Ports of the auth context: session state, access tokens, login throttling."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from domain.auth.model import LoginActivity, RefreshTokenRecord, UserSessions
from domain.auth.state import Group, UserState
from domain.users.queries import Page, PageRequest


class UserStateStore(Protocol):
    """The session-state cache: one entry per user, in field groups (see domain.auth.state).

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


@dataclass(frozen=True)
class AccessClaims:
    user_id: UUID  # sub
    session_id: UUID  # sid
    token_id: str  # jti
    issued_at: datetime  # iat
    expires_at: datetime  # exp


class AccessTokens(Protocol):
    """Short-lived signed access tokens."""

    def issue(self, user_id: UUID, session_id: UUID, now: datetime) -> tuple[str, AccessClaims]: ...

    def decode(self, token: str, now: datetime) -> AccessClaims | None:
        """The claims of a genuine, unexpired token; None for anything else."""
        ...


class LoginThrottle(Protocol):
    """Counts failed logins per account and per client address.

    `account` is an opaque key for the account (derived from the email whether or not an
    account has it, so throttling reveals nothing), `client` the client's address.
    """

    def retry_after(self, account: str, client: str) -> int:
        """Seconds until a login attempt is allowed again; 0 when it is allowed now."""
        ...

    def failed(self, account: str, client: str) -> None: ...

    def succeeded(self, account: str, client: str) -> None:
        """Forget this client's failures on this account (not other clients')."""
        ...


class SessionRepository(Protocol):
    """The sessions of users, in one unit of work."""

    def get(self, user_id: UUID, now: datetime, *, lock: bool = False) -> UserSessions | None:
        """The user's live sessions, or None when there is no such user. `lock=True` holds the
        user's row until the unit of work ends, serialising every change to one user."""
        ...

    def find_refresh(self, digest: str) -> RefreshTokenRecord | None:
        """The session a refresh token was issued to, whether or not it is still current."""
        ...

    def save(self, sessions: UserSessions) -> None:
        """Write the changes and increment `sessions.version`; raises ConcurrentUpdate when the
        stored version is no longer the one loaded."""
        ...


class LoginActivityRepository(Protocol):
    def add(self, activity: LoginActivity) -> None:
        """Record it, unless a row with its id exists (a redelivered event)."""
        ...

    def list(self, user_id: UUID, page: PageRequest) -> Page[LoginActivity]:
        """A page of the user's activity, newest first."""
        ...
