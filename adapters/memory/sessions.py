"""Sessions and login activity of the in-memory database: staged, applied on commit."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from domain.auth.model import LoginActivity, RefreshTokenRecord, Session, UserSessions
from domain.errors import ConcurrentUpdate
from domain.users.queries import Page, PageRequest

if TYPE_CHECKING:
    from adapters.memory.unit_of_work import InMemoryDatabase, InMemoryUserRepository


@dataclass
class SessionTables:
    """The committed sessions state, guarded by the database's lock."""

    heads: dict[UUID, tuple[int, datetime | None]] = field(default_factory=dict)  # version, last login
    sessions: dict[UUID, Session] = field(default_factory=dict)
    refresh: dict[str, RefreshTokenRecord] = field(default_factory=dict)
    activity: dict[UUID, LoginActivity] = field(default_factory=dict)

    def drop_user(self, user_id: UUID) -> None:
        gone = {s for s, session in self.sessions.items() if session.user_id == user_id}
        for session_id in gone:
            del self.sessions[session_id]
        self.refresh = {d: r for d, r in self.refresh.items() if r.session_id not in gone}
        self.activity = {a: row for a, row in self.activity.items() if row.user_id != user_id}
        self.heads.pop(user_id, None)


@dataclass
class _Save:
    user_id: UUID
    expected: int
    last_login_at: datetime | None
    sessions: list[Session]
    issued: dict[str, RefreshTokenRecord]


class InMemorySessionRepository:
    def __init__(self, db: InMemoryDatabase, users: InMemoryUserRepository) -> None:
        self._db = db
        self._users = users
        self._saves: list[_Save] = []

    def get(self, user_id: UUID, now: datetime, *, lock: bool = False) -> UserSessions | None:
        if lock:
            self._users.lock_row(user_id)
        with self._db.lock:
            if user_id not in self._db.users:
                return None
            version, last_login_at = self._db.auth.heads.get(user_id, (0, None))
            live = {
                s.id: copy.copy(s)
                for s in self._db.auth.sessions.values()
                if s.user_id == user_id and s.live(now)
            }
        return UserSessions(user_id, version, last_login_at, live)

    def find_refresh(self, digest: str) -> RefreshTokenRecord | None:
        for save in reversed(self._saves):
            if digest in save.issued:
                return save.issued[digest]
        with self._db.lock:
            return self._db.auth.refresh.get(digest)

    def save(self, user_sessions: UserSessions) -> None:
        written = [copy.copy(user_sessions.sessions[s]) for s in user_sessions.changed]
        issued = {d: RefreshTokenRecord(s, user_sessions.user_id) for d, s, _ in user_sessions.issued}
        self._saves.append(
            _Save(user_sessions.user_id, user_sessions.version, user_sessions.last_login_at, written, issued)
        )
        user_sessions.version += 1
        user_sessions.opened.clear()
        user_sessions.changed.clear()
        user_sessions.issued.clear()

    def check(self) -> None:
        """Before commit, under the database lock: every save is still on its version."""
        versions: dict[UUID, int] = {}
        for save in self._saves:
            current = versions.get(save.user_id, self._db.auth.heads.get(save.user_id, (0, None))[0])
            if current != save.expected or save.user_id not in self._db.users:
                raise ConcurrentUpdate()
            versions[save.user_id] = current + 1

    def committed(self) -> None:
        tables = self._db.auth
        for save in self._saves:
            tables.heads[save.user_id] = (save.expected + 1, save.last_login_at)
            tables.sessions.update((s.id, s) for s in save.sessions)
            tables.refresh.update(save.issued)
        self._saves.clear()

    def clear(self) -> None:
        self._saves.clear()


class InMemoryLoginActivityRepository:
    def __init__(self, db: InMemoryDatabase) -> None:
        self._db = db
        self.staged: list[LoginActivity] = []

    def add(self, activity: LoginActivity) -> None:
        self.staged.append(activity)

    def list(self, user_id: UUID, page: PageRequest) -> Page[LoginActivity]:
        with self._db.lock:
            rows = [a for a in self._db.auth.activity.values() if a.user_id == user_id]
        rows.sort(key=lambda a: (-a.occurred_at.timestamp(), str(a.id)))
        return Page(items=rows[page.offset : page.offset + page.size], total=len(rows), request=page)

    def committed(self) -> None:
        for activity in self.staged:
            if activity.user_id in self._db.users:
                self._db.auth.activity.setdefault(activity.id, activity)
        self.staged.clear()
