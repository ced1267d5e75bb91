"""The sessions of one user: the consistency boundary of login, refresh and logout.

A session is one device's refresh-token family. Its refresh token is rotated on every refresh;
every token ever issued to it is remembered (by digest), so presenting one that was rotated
away, a sign that it was stolen, ends the session.

`version` counts changes to the user's sessions. It versions the `sessions` group of UserState,
and it is bumped with compare-and-set on save, so two writers of one user's sessions cannot both
win (the repository raises ConcurrentUpdate for the loser).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID, uuid4

from domain.messages import Event


class EndReason(StrEnum):
    LOGOUT = "logout"
    REFRESH_REUSED = "refresh_reused"
    PASSWORD_CHANGED = "password_changed"
    DISABLED = "disabled"
    EVICTED = "evicted"  # the oldest live session, when a login would exceed MAX_LIVE_SESSIONS


# Live sessions a user may hold; a login beyond it ends the one least recently logged in or
# refreshed. Without a bound, a script logging in over and over makes every login (which loads
# the live sessions) and the session state (which lists them) grow without end.
MAX_LIVE_SESSIONS = 100


@dataclass
class Session:
    id: UUID
    user_id: UUID
    refresh_digest: str
    created_at: datetime
    refreshed_at: datetime
    expires_at: datetime
    ended_at: datetime | None = None
    end_reason: EndReason | None = None

    def live(self, now: datetime) -> bool:
        return self.ended_at is None and now < self.expires_at


@dataclass
class UserSessions:
    """The live sessions of a user (ended and expired ones are not loaded) and the digests
    issued since it was loaded, which the repository writes on save."""

    user_id: UUID
    version: int
    last_login_at: datetime | None
    sessions: dict[UUID, Session] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    opened: set[UUID] = field(default_factory=set)
    changed: set[UUID] = field(default_factory=set)
    issued: list[tuple[str, UUID, datetime]] = field(default_factory=list)  # digest, session, at

    def open(self, refresh_digest: str, now: datetime, lifetime: timedelta) -> Session:
        live = sorted(self.live(now), key=lambda s: s.refreshed_at)
        for oldest in live[: max(0, len(live) - MAX_LIVE_SESSIONS + 1)]:
            self.end(oldest, now, EndReason.EVICTED)
        session = Session(uuid4(), self.user_id, refresh_digest, now, now, now + lifetime)
        self.sessions[session.id] = session
        self.opened.add(session.id)
        self.last_login_at = now
        self._issued(session, now)
        return session

    def rotate(self, session: Session, refresh_digest: str, now: datetime, lifetime: timedelta) -> None:
        session.refresh_digest, session.refreshed_at = refresh_digest, now
        session.expires_at = now + lifetime
        self._issued(session, now)

    def end(self, session: Session, now: datetime, reason: EndReason) -> None:
        session.ended_at, session.end_reason = now, reason
        self.changed.add(session.id)

    def end_all(self, now: datetime, reason: EndReason, *, keep: UUID | None = None) -> None:
        for session in self.sessions.values():
            if session.id != keep and session.ended_at is None:
                self.end(session, now, reason)

    def live(self, now: datetime) -> list[Session]:
        return [s for s in self.sessions.values() if s.live(now)]

    def get(self, session_id: UUID, now: datetime) -> Session | None:
        session = self.sessions.get(session_id)
        return session if session is not None and session.live(now) else None

    def _issued(self, session: Session, now: datetime) -> None:
        self.changed.add(session.id)
        self.issued.append((session.refresh_digest, session.id, now))


@dataclass(frozen=True)
class Lifetimes:
    """How long tokens live (configuration)."""

    access: timedelta = timedelta(minutes=15)
    refresh: timedelta = timedelta(days=14)


@dataclass(frozen=True)
class RefreshTokenRecord:
    """What a refresh token's digest points at."""

    session_id: UUID
    user_id: UUID


@dataclass(frozen=True)
class LoginActivity:
    id: UUID
    user_id: UUID
    occurred_at: datetime
    kind: str
    client_address: str | None
    user_agent: str | None
