"""What a UserState is built from, in one SELECT: the user's row (which also holds the session
head and the subscriptions version), their live sessions and their newest subscription.

One statement is one round trip and one snapshot on every database (PostgreSQL's READ COMMITTED
gives each statement of a transaction its own). The user's row comes once per live session
(none: once, the session columns NULL), each carrying the newest subscription's columns.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import BindParameter, Connection, Table, and_, bindparam, select

from adapters.sqlalchemy.sessions import session_of
from adapters.sqlalchemy.subscriptions import subscription_of
from adapters.sqlalchemy.tables import sessions, subscriptions, users
from adapters.sqlalchemy.users import user_of
from adapters.tracking import UserTracker
from domain.auth.model import UserSessions
from domain.subscriptions.model import UserSubscriptions
from ports.repositories import UserStateSource


def _labels(table: Table, prefix: str) -> dict[str, str]:
    """Each column's name and its label in the joined row (the tables share column names)."""
    return {column.name: prefix + column.name for column in table.c}


_SESSION = _labels(sessions, "live_")
_SUBSCRIPTION = _labels(subscriptions, "newest_")
_USER_ID: BindParameter[UUID] = bindparam("user_id")
# Uncorrelated (it needs nothing from the outer row): both databases run it once per statement
# and then find the newest subscription by its primary key.
_newest = subscriptions.alias("newest")
_NEWEST_ID = (
    select(_newest.c.id)
    .where(_newest.c.user_id == _USER_ID)
    .order_by(_newest.c.created_at.desc(), _newest.c.id.desc())
    .limit(1)
    .correlate(None)
    .scalar_subquery()
)
# Built once (SQLAlchemy finds it compiled in its cache, with no statement to build and key per
# call). The same conditions as the repositories' own reads: users.get, sessions.get (_LIVE) and
# subscriptions.of_user (_NEWEST).
_READ = (
    select(
        users,
        *(subscriptions.c[name].label(label) for name, label in _SUBSCRIPTION.items()),
        *(sessions.c[name].label(label) for name, label in _SESSION.items()),
    )
    .select_from(
        users.outerjoin(
            subscriptions, and_(subscriptions.c.user_id == users.c.id, subscriptions.c.id == _NEWEST_ID)
        ).outerjoin(
            sessions,
            and_(
                sessions.c.user_id == users.c.id,
                sessions.c.ended_at.is_(None),
                sessions.c.expires_at > bindparam("now"),
            ),
        )
    )
    .where(users.c.id == _USER_ID)
)


class SqlAlchemyUserStateSourceRepository:
    def __init__(self, connection: Connection, tracker: UserTracker) -> None:
        self._connection = connection
        self._tracker = tracker  # the unit of work's identity map, as users.get uses it

    def get(self, user_id: UUID, now: datetime) -> UserStateSource | None:
        rows = self._connection.execute(_READ, {"user_id": user_id, "now": now}).mappings().all()
        if not rows:
            return None
        head = rows[0]
        # A user this unit of work already holds stays the one returned (None if it removed it).
        user = self._tracker.loaded(user_of(head))
        if user is None:
            return None
        live = (session_of(_part(row, _SESSION)) for row in rows if row[_SESSION["id"]] is not None)
        newest = head[_SUBSCRIPTION["id"]]
        return UserStateSource(
            user,
            UserSessions(user_id, head["session_version"], head["last_login_at"], {s.id: s for s in live}),
            UserSubscriptions(
                user_id,
                head["subscription_version"],
                subscription_of(_part(head, _SUBSCRIPTION)) if newest is not None else None,
            ),
        )


def _part(row: Any, labels: dict[str, str]) -> dict[str, Any]:
    """One table's columns of a joined row, by their own names."""
    return {name: row[label] for name, label in labels.items()}
