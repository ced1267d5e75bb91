"""Sessions, refresh tokens and login activity over SQLAlchemy Core, written at once in the
unit of work's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, bindparam, func, insert, select, update

from adapters.sqlalchemy.tables import login_activity, refresh_tokens, sessions, users
from domain.auth.model import EndReason, LoginActivity, RefreshTokenRecord, Session, UserSessions
from domain.errors import ConcurrentUpdate
from domain.users.queries import Page, PageRequest

# Built once (SQLAlchemy finds them compiled in its cache, with no statement to build and key
# per call): a user's session head without and with a row lock, and their live sessions.
_HEAD = select(users.c.session_version, users.c.last_login_at).where(users.c.id == bindparam("user_id"))
_HEADS = (_HEAD, _HEAD.with_for_update())
_LIVE = select(sessions).where(
    sessions.c.user_id == bindparam("user_id"),
    sessions.c.ended_at.is_(None),
    sessions.c.expires_at > bindparam("now"),
)


class SqlAlchemySessionRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def get(self, user_id: UUID, now: datetime, *, lock: bool = False) -> UserSessions | None:
        # SQLite needs no lock: its write transactions begin IMMEDIATE.
        row = self._connection.execute(_HEADS[lock], {"user_id": user_id}).first()
        if row is None:
            return None
        live = self._connection.execute(_LIVE, {"user_id": user_id, "now": now})
        found = {s.id: s for s in map(session_of, live.mappings())}
        return UserSessions(user_id, row.session_version, row.last_login_at, found)

    def find_refresh(self, digest: str) -> RefreshTokenRecord | None:
        row = self._connection.execute(
            select(refresh_tokens.c.session_id, sessions.c.user_id)
            .join(sessions, sessions.c.id == refresh_tokens.c.session_id)
            .where(refresh_tokens.c.digest == digest)
        ).first()
        return RefreshTokenRecord(row.session_id, row.user_id) if row is not None else None

    def save(self, user_sessions: UserSessions) -> None:
        bumped = self._connection.execute(
            update(users)
            .where(users.c.id == user_sessions.user_id, users.c.session_version == user_sessions.version)
            .values(session_version=user_sessions.version + 1, last_login_at=user_sessions.last_login_at)
        )
        if bumped.rowcount != 1:
            raise ConcurrentUpdate()
        for session_id in user_sessions.changed:
            session = user_sessions.sessions[session_id]
            row = _to_row(session)
            if session_id in user_sessions.opened:
                self._connection.execute(insert(sessions).values(row))
            else:
                self._connection.execute(update(sessions).where(sessions.c.id == session_id).values(row))
        if user_sessions.issued:
            self._connection.execute(
                insert(refresh_tokens),
                [{"digest": d, "session_id": s, "issued_at": at} for d, s, at in user_sessions.issued],
            )
        user_sessions.version += 1
        user_sessions.opened.clear()
        user_sessions.changed.clear()
        user_sessions.issued.clear()


class SqlAlchemyLoginActivityRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add(self, activity: LoginActivity) -> None:
        exists = self._connection.scalar(
            select(login_activity.c.id).where(login_activity.c.id == activity.id)
        )
        if exists is None:
            self._connection.execute(insert(login_activity).values(vars(activity)))

    def list(self, user_id: UUID, page: PageRequest) -> Page[LoginActivity]:
        condition = login_activity.c.user_id == user_id
        total = self._connection.scalar(select(func.count()).select_from(login_activity).where(condition))
        rows = self._connection.execute(
            select(login_activity)
            .where(condition)
            .order_by(login_activity.c.occurred_at.desc(), login_activity.c.id)
            .limit(page.size)
            .offset(page.offset)
        )
        return Page(items=[LoginActivity(**row) for row in rows.mappings()], total=total or 0, request=page)


def _to_row(session: Session) -> dict[str, Any]:
    return vars(session) | {"end_reason": session.end_reason.value if session.end_reason else None}


def session_of(row: Any) -> Session:
    reason = row["end_reason"]
    return Session(
        id=row["id"],
        user_id=row["user_id"],
        refresh_digest=row["refresh_digest"],
        created_at=row["created_at"],
        refreshed_at=row["refreshed_at"],
        expires_at=row["expires_at"],
        ended_at=row["ended_at"],
        end_reason=EndReason(reason) if reason else None,
    )
