"""The user repository over SQLAlchemy Core: reads at once, writes on commit."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Select, String, bindparam, cast, delete, func, insert, select, update

from adapters.sqlalchemy.tables import users
from adapters.tracking import UserTracker
from domain.errors import ConcurrentUpdate
from domain.users.model import User, UserStatus
from domain.users.queries import Page, PageRequest, UserFilter

ADMINS_LOCK = 0x75736572_61646D6E  # "useradmn": the advisory lock of count_active_admins


class SqlAlchemyUserRepository:
    """Users of one unit of work, on its connection. Loaded users go through the tracker (the
    identity map); `flush` writes the tracked changes, each conditional on the version loaded."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self.tracker = UserTracker()

    def add(self, user: User) -> None:
        self.tracker.added(user)

    def get(self, user_id: UUID, *, lock: bool = False) -> User | None:
        if not lock and (user := self.tracker.known(user_id)) is not None:
            return user
        return self._load_one(_BY_ID, {"id": user_id}, lock)

    def get_by_email(self, email: str, *, lock: bool = False) -> User | None:
        return self._load_one(_BY_EMAIL, {"email": email}, lock)

    def remove(self, user: User) -> None:
        self.tracker.removed(user)

    def count_active_admins(self, *, lock: bool = False) -> int:
        # Roles are a JSON array of known names: '"admin"' in its text is the admin role.
        query = (
            select(users.c.id)
            .where(users.c.status == UserStatus.ACTIVE.value, cast(users.c.roles, String).like('%"admin"%'))
            .order_by(users.c.id)
        )
        if lock and self._connection.dialect.name == "postgresql":
            # One transaction-scoped advisory lock serialises these counts without locking any
            # user's row, so it never meets a login's row and foreign-key locks in a deadlock.
            # (SQLite's BEGIN IMMEDIATE serialises whole transactions already.)
            self._connection.execute(select(func.pg_advisory_xact_lock(ADMINS_LOCK)))
        return len(self._connection.execute(query).all())

    def list(self, filter: UserFilter, page: PageRequest) -> Page[User]:
        """A page of committed users, oldest first; like the in-memory adapter, the items are
        snapshots outside the identity map (a read model, not aggregates to change)."""
        conditions = []
        if filter.email is not None:
            conditions.append(users.c.email == filter.email)
        if filter.confirmed is not None:
            conditions.append(users.c.confirmed == filter.confirmed)
        total = self._connection.scalar(select(func.count()).select_from(users).where(*conditions))
        rows = self._connection.execute(
            select(users)
            .where(*conditions)
            .order_by(users.c.created_at, users.c.id)
            .limit(page.size)
            .offset(page.offset)
        )
        return Page(items=[user_of(row) for row in rows.mappings()], total=total or 0, request=page)

    def flush(self) -> None:
        """Write the tracked changes: deletes, then updates, then inserts, so an email freed in
        this unit of work can be taken in it. Raises ConcurrentUpdate when a row is no longer
        at the version this unit of work loaded (changed or deleted by another one)."""
        changes = self.tracker.changes()
        for user, version in changes.deletes:
            self._write_if_unchanged(_DELETE, {}, user, version)
        for user, version in changes.updates:
            changed = {f"new_{name}": value for name, value in _to_row(user).items() if name in _CHANGEABLE}
            self._write_if_unchanged(_UPDATE, changed, user, version)
        if changes.inserts:
            self._connection.execute(insert(users), [_to_row(user) for user in changes.inserts])

    def _write_if_unchanged(self, statement: Any, values: dict[str, Any], user: User, version: int) -> None:
        """`statement` (_UPDATE with its `new_*` values, or _DELETE) on the row only while it is
        still at `version`."""
        result = self._connection.execute(statement, {**values, "row_id": user.id, "row_version": version})
        if result.rowcount != 1:
            raise ConcurrentUpdate()

    def _load_one(self, statements: tuple[Select, Select], key: dict[str, Any], lock: bool) -> User | None:
        # SQLite has no row locks and needs none: its transactions begin IMMEDIATE.
        row = self._connection.execute(statements[lock], key).mappings().first()
        # A user already tracked stays the one returned, whatever the row now says.
        return self.tracker.loaded(user_of(row)) if row is not None else None


def _reads(condition: Any) -> tuple[Select, Select]:
    """A user's read by `condition`, without and with a row lock, built once: SQLAlchemy then
    finds each compiled in its cache without building and keying a new statement per call."""
    statement = select(users).where(condition)
    return statement, statement.with_for_update()


_BY_ID = _reads(users.c.id == bindparam("id"))
_BY_EMAIL = _reads(users.c.email == bindparam("email"))
# A tracked user's write while the row is at the version it was loaded at, built once (an UPDATE
# sets the columns its parameters name).
_AT_VERSION = (users.c.id == bindparam("row_id"), users.c.version == bindparam("row_version"))
# The columns a user's update writes, named: the other contexts' columns on the row (the session
# and subscription versions, the last login) are theirs to write, by compare-and-set.
_CHANGEABLE = ("email", "initials", "password_hash", "confirmed", "roles", "status", "version")
_UPDATE = update(users).where(*_AT_VERSION).values({name: bindparam(f"new_{name}") for name in _CHANGEABLE})
_DELETE = delete(users).where(*_AT_VERSION)


def _to_row(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "initials": user.initials,
        "password_hash": user.password_hash,
        "confirmed": user.confirmed,
        "roles": sorted(user.roles),
        "status": user.status.value,
        "version": user.version,
        "created_at": user.created_at,
    }


def user_of(row: Any) -> User:
    return User(
        id=row["id"],
        email=row["email"],
        initials=row["initials"],
        password_hash=row["password_hash"],
        created_at=row["created_at"],
        confirmed=row["confirmed"],
        roles=frozenset(row["roles"]),
        status=UserStatus(row["status"]),
        version=row["version"],
    )
