# Over 200 lines: the in-memory database and its unit of work mirror the SQL pair's contract.
"""A thread-safe in-memory database with the same transactional contract as the SQL one."""

from __future__ import annotations

import copy
import threading
from dataclasses import replace
from datetime import datetime
from typing import Self
from uuid import UUID

from adapters.memory.sessions import (
    InMemoryLoginActivityRepository,
    InMemorySessionRepository,
    SessionTables,
)
from adapters.memory.state_sources import InMemoryUserStateSourceRepository
from adapters.memory.subscriptions import InMemorySubscriptionRepository, SubscriptionTables
from adapters.tracking import UserTracker
from domain.errors import AlreadyExists, ConcurrentUpdate
from domain.messages import Event
from domain.users.model import User, UserStatus
from domain.users.queries import Page, PageRequest, UserFilter
from domain.users.tokens import AccountToken, TokenPurpose
from ports.event_bus import EventBus


class InMemoryDatabase:
    """Committed state shared by every unit of work made from it."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.users: dict[UUID, User] = {}
        self.tokens: dict[str, AccountToken] = {}
        self.row_locks: dict[UUID, threading.Lock] = {}
        self.admins_lock = threading.Lock()  # count_active_admins(lock=True), until the unit ends
        self.auth = SessionTables()
        self.subscriptions = SubscriptionTables()


def _active_admin(user: User) -> bool:
    return user.status == UserStatus.ACTIVE and "admin" in user.roles


class InMemoryUserRepository:
    def __init__(self, db: InMemoryDatabase) -> None:
        self._db = db
        self.tracker = UserTracker()
        self._held: list[threading.Lock] = []

    def add(self, user: User) -> None:
        self.tracker.added(user)

    def get(self, user_id: UUID, *, lock: bool = False) -> User | None:
        if lock:
            self.lock_row(user_id)
        elif (user := self.tracker.known(user_id)) is not None:
            return user
        with self._db.lock:
            stored = self._db.users.get(user_id)
        return self.tracker.loaded(copy.deepcopy(stored)) if stored else None

    def get_by_email(self, email: str, *, lock: bool = False) -> User | None:
        with self._db.lock:
            stored = next((u for u in self._db.users.values() if u.email == email), None)
        if stored is None:
            return None
        user = self.get(stored.id, lock=lock)
        return user if user is not None and user.email == email else None

    def release_locks(self) -> None:
        while self._held:
            self._held.pop().release()

    def lock_row(self, user_id: UUID) -> None:
        """Like SELECT ... FOR UPDATE: held until the unit of work ends."""
        with self._db.lock:
            row_lock = self._db.row_locks.setdefault(user_id, threading.Lock())
        if row_lock not in self._held:
            row_lock.acquire()  # outside the database lock, which the holder needs to commit
            self._held.append(row_lock)

    def remove(self, user: User) -> None:
        self.tracker.removed(user)

    def count_active_admins(self, *, lock: bool = False) -> int:
        if lock and self._db.admins_lock not in self._held:
            self._db.admins_lock.acquire()  # held like a row lock: released when the unit ends
            self._held.append(self._db.admins_lock)
        with self._db.lock:
            return sum(1 for u in self._db.users.values() if _active_admin(u))

    def list(self, filter: UserFilter, page: PageRequest) -> Page[User]:
        with self._db.lock:
            matches = sorted(
                (
                    u
                    for u in self._db.users.values()
                    if (filter.email is None or u.email == filter.email)
                    and (filter.confirmed is None or u.confirmed == filter.confirmed)
                ),
                key=lambda u: (u.created_at, str(u.id)),
            )
            items = [copy.deepcopy(u) for u in matches[page.offset : page.offset + page.size]]
        return Page(items=items, total=len(matches), request=page)


class InMemoryAccountTokenRepository:
    """Token writes are staged and applied on commit, like every other write."""

    def __init__(self, db: InMemoryDatabase) -> None:
        self._db = db
        self.staged: dict[str, AccountToken] = {}
        self._consumed: dict[str, AccountToken] = {}  # as they were, to give back on rollback

    def add(self, token: AccountToken) -> None:
        self.staged[token.digest] = token

    def consume(self, digest: str, purpose: TokenPurpose, now: datetime) -> AccountToken | None:
        with self._db.lock:
            token = self.staged.get(digest) or self._db.tokens.get(digest)
            if token is None or token.purpose != purpose or not token.usable(now):
                return None
            used = replace(token, used_at=now)
            if digest in self._db.tokens and digest not in self.staged:
                # Consumed in the committed store at once, as a row lock would: of two racing
                # consumers only one wins. A rollback gives the token back.
                self._db.tokens[digest] = used
                self._consumed[digest] = token
            self.staged[digest] = used
            return used

    def revoke(self, user_id: UUID, purpose: TokenPurpose, now: datetime) -> None:
        with self._db.lock:
            for token in [*self._db.tokens.values(), *self.staged.values()]:
                if token.user_id == user_id and token.purpose == purpose and token.used_at is None:
                    self.staged[token.digest] = replace(token, used_at=now)

    def last_issued_at(self, user_id: UUID, purpose: TokenPurpose) -> datetime | None:
        with self._db.lock:
            times = [
                t.created_at
                for t in [*self._db.tokens.values(), *self.staged.values()]
                if t.user_id == user_id and t.purpose == purpose
            ]
        return max(times, default=None)

    def give_back(self) -> None:
        with self._db.lock:
            for digest, token in self._consumed.items():
                # Only what this unit of work consumed; not a token revoked meanwhile by another.
                if self._db.tokens.get(digest) == self.staged.get(digest):
                    self._db.tokens[digest] = token
        self._consumed.clear()
        self.staged.clear()

    def committed(self) -> None:
        self._db.tokens.update(self.staged)
        self._consumed.clear()


class InMemoryUnitOfWork:
    """The SQL unit of work's contract: events collected by `commit()` are published on
    leaving the block, after the row locks are released (the port's publish rule)."""

    def __init__(self, db: InMemoryDatabase, bus: EventBus) -> None:
        self._db = db
        self._bus = bus

    def __enter__(self) -> Self:
        self.users = InMemoryUserRepository(self._db)
        self.tokens = InMemoryAccountTokenRepository(self._db)
        self.sessions = InMemorySessionRepository(self._db, self.users)
        self.activity = InMemoryLoginActivityRepository(self._db)
        self.subscriptions = InMemorySubscriptionRepository(self._db, self.users)
        self.state_sources = InMemoryUserStateSourceRepository(
            self._db, self.users, self.sessions, self.subscriptions
        )
        self._committed = False
        self._recorded: list[Event] = []  # since the last commit
        self._outgoing: list[Event] = []  # committed: published on leaving the block
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            if not self._committed:
                self.rollback()
        finally:
            self.users.release_locks()
        outgoing, self._outgoing = self._outgoing, []
        for event in outgoing:
            self._bus.publish(event)

    def record(self, event: Event) -> None:
        # The aggregates' events recorded so far go first: the order of recording holds.
        self._recorded += [*self.users.tracker.drain_events(), event]

    def commit(self) -> None:
        changes = self.users.tracker.changes()
        with self._db.lock:
            users = self._db.users
            for user, version in changes.updates + changes.deletes:
                if user.id not in users or users[user.id].version != version:
                    raise ConcurrentUpdate()
            written = changes.inserts + [user for user, _ in changes.updates]
            deleted = {user.id for user, _ in changes.deletes}
            owners = {u.email: u.id for u in users.values() if u.id not in deleted}
            for user in written:
                if owners.setdefault(user.email, user.id) != user.id:
                    raise AlreadyExists()
            self.sessions.check()
            self.subscriptions.check()
            self.tokens.committed()
            self.sessions.committed()
            self.activity.committed()
            self.subscriptions.committed()
            for user_id in deleted:  # after the staged tokens: a user's tokens go with it
                del users[user_id]
                for digest in [d for d, t in self._db.tokens.items() if t.user_id == user_id]:
                    del self._db.tokens[digest]
                self._db.auth.drop_user(user_id)
                self._db.subscriptions.drop_user(user_id)
            for user in written:
                users[user.id] = _snapshot(user)
        self._committed = True
        self.users.release_locks()  # as a database commit releases row locks
        self._outgoing += [*self._recorded, *self.users.tracker.drain_events()]
        self._recorded = []

    def rollback(self) -> None:
        self.tokens.give_back()
        self.sessions.clear()
        self.subscriptions.clear()
        self.activity.staged.clear()
        self.users.tracker.clear()
        self._recorded.clear()


def _snapshot(user: User) -> User:
    stored = copy.deepcopy(user)
    stored.events = []
    return stored
