"""Subscriptions and payments of the in-memory database: staged, applied on commit. Reads see
this unit of work's own writes over the committed ones, as they would in a SQL transaction."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from domain.errors import AlreadyExists, ConcurrentUpdate
from domain.subscriptions.model import Payment, Subscription, SubscriptionStatus, UserSubscriptions

if TYPE_CHECKING:
    from adapters.memory.unit_of_work import InMemoryDatabase, InMemoryUserRepository

OPEN = frozenset({SubscriptionStatus.PENDING, SubscriptionStatus.ACTIVE})


@dataclass
class SubscriptionTables:
    """The committed subscriptions state, guarded by the database's lock."""

    versions: dict[UUID, int] = field(default_factory=dict)  # absent: 0, like the column default
    subscriptions: dict[UUID, Subscription] = field(default_factory=dict)
    payments: dict[UUID, Payment] = field(default_factory=dict)

    def drop_user(self, user_id: UUID) -> None:
        gone = {s for s, subscription in self.subscriptions.items() if subscription.user_id == user_id}
        for subscription_id in gone:
            del self.subscriptions[subscription_id]
        self.payments = {p: row for p, row in self.payments.items() if row.subscription_id not in gone}
        self.versions.pop(user_id, None)


@dataclass
class _Save:
    user_id: UUID
    expected: int
    subscription: Subscription | None  # the one added or changed, as saved
    applied: list[Payment]


class InMemorySubscriptionRepository:
    def __init__(self, db: InMemoryDatabase, users: InMemoryUserRepository) -> None:
        self._db = db
        self._users = users
        self._saves: list[_Save] = []
        self._added: list[Payment] = []

    def get(self, subscription_id: UUID) -> Subscription | None:
        with self._db.lock:
            found = self._subscriptions().get(subscription_id)
        return copy.copy(found)

    def of_user(self, user_id: UUID, *, lock: bool = False) -> UserSubscriptions | None:
        if lock:
            self._users.lock_row(user_id)
        with self._db.lock:
            if user_id not in self._db.users:
                return None
            version = self._version(user_id)
            mine = [s for s in self._subscriptions().values() if s.user_id == user_id]
        newest = max(mine, key=lambda s: (s.created_at, s.id), default=None)
        return UserSubscriptions(user_id, version, copy.copy(newest))

    def save(self, subs: UserSubscriptions) -> None:
        written = copy.copy(subs.current) if subs.added or subs.changed else None
        self._saves.append(_Save(subs.user_id, subs.version, written, list(subs.applied)))
        subs.version += 1
        subs.added = subs.changed = False
        subs.applied.clear()

    def add_payment(self, payment: Payment) -> None:
        self._added.append(payment)

    def get_payment(self, payment_id: UUID) -> Payment | None:
        with self._db.lock:
            return self._payments().get(payment_id)

    def find_payment(self, reference: str) -> Payment | None:
        with self._db.lock:
            return next((p for p in self._payments().values() if p.reference == reference), None)

    def ended_periods(self, now: datetime, limit: int) -> list[UUID]:
        with self._db.lock:
            active = [s for s in self._subscriptions().values() if s.status == SubscriptionStatus.ACTIVE]
        due = sorted(
            (s for s in active if s.current_period_end is not None and s.current_period_end <= now),
            key=lambda s: (s.current_period_end, s.id),
        )
        return [s.user_id for s in due[:limit]]

    def unapplied_payments(self, limit: int) -> list[tuple[Payment, UUID]]:
        with self._db.lock:
            subscriptions = self._subscriptions()
            unapplied = [
                (p, subscriptions[p.subscription_id].user_id)
                for p in self._payments(added=False).values()
                if p.applied_at is None
                and p.subscription_id in subscriptions
                and subscriptions[p.subscription_id].status in OPEN
            ]
        unapplied.sort(key=lambda row: (row[0].received_at, row[0].id))
        return unapplied[:limit]

    def check(self) -> None:
        """Before commit, under the database lock: every save is still on its version, every
        added payment's reference is new and its subscription (and user) still there."""
        versions: dict[UUID, int] = {}
        for save in self._saves:
            current = versions.get(save.user_id, self._db.subscriptions.versions.get(save.user_id, 0))
            if current != save.expected or save.user_id not in self._db.users:
                raise ConcurrentUpdate()
            versions[save.user_id] = current + 1
        subscriptions = self._subscriptions()
        references = {p.reference for p in self._db.subscriptions.payments.values()}
        for payment in self._added:
            if payment.reference in references:
                raise AlreadyExists()
            references.add(payment.reference)
            owner = subscriptions.get(payment.subscription_id)
            if owner is None or owner.user_id not in self._db.users:
                raise ConcurrentUpdate()

    def committed(self) -> None:
        tables = self._db.subscriptions
        tables.payments.update((p.id, p) for p in self._added)
        for save in self._saves:
            tables.versions[save.user_id] = save.expected + 1
            if save.subscription is not None:
                tables.subscriptions[save.subscription.id] = save.subscription
            tables.payments.update((p.id, p) for p in save.applied if p.id in tables.payments)
        self.clear()

    def clear(self) -> None:
        self._saves.clear()
        self._added.clear()

    def _version(self, user_id: UUID) -> int:
        saved = [save.expected + 1 for save in self._saves if save.user_id == user_id]
        return saved[-1] if saved else self._db.subscriptions.versions.get(user_id, 0)

    def _subscriptions(self) -> dict[UUID, Subscription]:
        """Committed, then this unit of work's saves over them (under the database lock)."""
        view = dict(self._db.subscriptions.subscriptions)
        view.update((s.subscription.id, s.subscription) for s in self._saves if s.subscription is not None)
        return view

    def _payments(self, added: bool = True) -> dict[UUID, Payment]:
        """Committed, then this unit of work's: its added payments (unless `added` is false: the
        SQL adapter inserts them on commit only) and the payments its saves applied."""
        view = {**self._db.subscriptions.payments, **{p.id: p for p in self._added if added}}
        view.update((p.id, p) for save in self._saves for p in save.applied if p.id in view)
        return view
