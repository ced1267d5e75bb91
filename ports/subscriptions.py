"""Persistence port of the subscriptions context."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol
from uuid import UUID

from domain.subscriptions.model import Payment, Subscription, UserSubscriptions


class SubscriptionRepository(Protocol):
    """Subscriptions and their payments, in one unit of work."""

    def get(self, subscription_id: UUID) -> Subscription | None: ...

    def of_user(self, user_id: UUID, *, lock: bool = False) -> UserSubscriptions | None:
        """The user's newest subscription and subscriptions version; None when there is no such
        user. `lock=True` holds the user's row until the unit of work ends, serialising every
        change to one user's subscriptions."""
        ...

    def save(self, subscriptions: UserSubscriptions) -> None:
        """Write the added or changed subscription and the applied payments, and increment
        `subscriptions.version`; raises ConcurrentUpdate when the stored version is no longer
        the one loaded."""
        ...

    def add_payment(self, payment: Payment) -> None:
        """Record it; a payment with the same reference makes the commit raise AlreadyExists."""
        ...

    def get_payment(self, payment_id: UUID) -> Payment | None: ...

    def find_payment(self, reference: str) -> Payment | None: ...

    def ended_periods(self, now: datetime, limit: int) -> list[UUID]:
        """Users whose subscription is active with its period over at `now`."""
        ...

    def unapplied_payments(self, limit: int) -> list[tuple[Payment, UUID]]:
        """Payments not yet applied to a subscription that is still pending or active, oldest
        first, each with its user's id."""
        ...
