"""Subscriptions and payments over SQLAlchemy Core. Subscription writes go to the unit of
work's transaction at once; payments are inserted when it commits, so a duplicate reference
fails the commit (AlreadyExists), as the port promises, and not the call that added it."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, bindparam, insert, select, update

from adapters.sqlalchemy.tables import payments, subscriptions, users
from domain.errors import ConcurrentUpdate
from domain.subscriptions.model import Payment, Subscription, SubscriptionStatus, UserSubscriptions

OPEN = (SubscriptionStatus.PENDING.value, SubscriptionStatus.ACTIVE.value)
# Built once (SQLAlchemy finds them compiled in its cache, with no statement to build and key
# per call): a user's subscription version without and with a row lock, and their newest one.
_HEAD = select(users.c.subscription_version).where(users.c.id == bindparam("user_id"))
_HEADS = (_HEAD, _HEAD.with_for_update())
_NEWEST = (
    select(subscriptions)
    .where(subscriptions.c.user_id == bindparam("user_id"))
    .order_by(subscriptions.c.created_at.desc(), subscriptions.c.id.desc())
    .limit(1)
)


class SqlAlchemySubscriptionRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._staged: dict[UUID, Payment] = {}  # added payments, inserted by `flush`

    def get(self, subscription_id: UUID) -> Subscription | None:
        return self._subscription(select(subscriptions).where(subscriptions.c.id == subscription_id))

    def of_user(self, user_id: UUID, *, lock: bool = False) -> UserSubscriptions | None:
        # SQLite needs no lock: its write transactions begin IMMEDIATE.
        version = self._connection.scalar(_HEADS[lock], {"user_id": user_id})
        if version is None:
            return None
        newest = self._subscription(_NEWEST, {"user_id": user_id})
        return UserSubscriptions(user_id, version, newest)

    def save(self, subs: UserSubscriptions) -> None:
        bumped = self._connection.execute(
            update(users)
            .where(users.c.id == subs.user_id, users.c.subscription_version == subs.version)
            .values(subscription_version=subs.version + 1)
        )
        if bumped.rowcount != 1:
            raise ConcurrentUpdate()
        current = subs.current
        if current is not None and subs.added:
            self._connection.execute(insert(subscriptions).values(_to_row(current)))
        elif current is not None and subs.changed:
            self._connection.execute(
                update(subscriptions).where(subscriptions.c.id == current.id).values(_to_row(current))
            )
        for payment in subs.applied:
            if payment.id in self._staged:  # added in this unit of work: inserted applied
                self._staged[payment.id] = payment
            self._connection.execute(
                update(payments).where(payments.c.id == payment.id).values(applied_at=payment.applied_at)
            )
        subs.version += 1
        subs.added = subs.changed = False
        subs.applied.clear()

    def add_payment(self, payment: Payment) -> None:
        self._staged[payment.id] = payment

    def get_payment(self, payment_id: UUID) -> Payment | None:
        if payment_id in self._staged:
            return self._staged[payment_id]
        return self._payment(payments.c.id == payment_id)

    def find_payment(self, reference: str) -> Payment | None:
        staged = (p for p in reversed(self._staged.values()) if p.reference == reference)
        return next(staged, None) or self._payment(payments.c.reference == reference)

    def ended_periods(self, now: datetime, limit: int) -> list[UUID]:
        rows = self._connection.scalars(
            select(subscriptions.c.user_id)
            .where(
                subscriptions.c.status == SubscriptionStatus.ACTIVE.value,
                subscriptions.c.current_period_end <= now,
            )
            .order_by(subscriptions.c.current_period_end, subscriptions.c.id)
            .limit(limit)
        )
        return list(rows)

    def unapplied_payments(self, limit: int) -> list[tuple[Payment, UUID]]:
        rows = self._connection.execute(
            select(payments, subscriptions.c.user_id)
            .join(subscriptions, subscriptions.c.id == payments.c.subscription_id)
            .where(payments.c.applied_at.is_(None), subscriptions.c.status.in_(OPEN))
            .order_by(payments.c.received_at, payments.c.id)
            .limit(limit)
        )
        return [(_to_payment(row), row["user_id"]) for row in rows.mappings()]

    def flush(self) -> None:
        """Insert the added payments; at commit, before the users are written, so a payment
        for a user removed in the same unit of work goes with the user."""
        if self._staged:
            self._connection.execute(insert(payments), [vars(p) for p in self._staged.values()])
        self._staged.clear()

    def clear(self) -> None:
        self._staged.clear()

    def _subscription(self, statement: Any, parameters: dict[str, Any] | None = None) -> Subscription | None:
        row = self._connection.execute(statement, parameters).mappings().first()
        return subscription_of(row) if row is not None else None

    def _payment(self, condition: Any) -> Payment | None:
        row = self._connection.execute(select(payments).where(condition)).mappings().first()
        return _to_payment(row) if row is not None else None


def _to_row(subscription: Subscription) -> dict[str, Any]:
    return vars(subscription) | {"status": subscription.status.value}


def subscription_of(row: Any) -> Subscription:
    return Subscription(**{**row, "status": SubscriptionStatus(row["status"])})


def _to_payment(row: Any) -> Payment:
    return Payment(**{column.name: row[column.name] for column in payments.c})
