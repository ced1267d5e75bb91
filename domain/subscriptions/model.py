"""The subscriptions of one user: the consistency boundary of every subscription change.

A user has at most one subscription that is pending or active, and only that one, the newest,
can still change: cancelled and expired are final. `version` counts the changes to a user's
subscriptions; it versions the `subscription` group of UserState and is bumped with
compare-and-set on save, so of two concurrent writers one loses (ConcurrentUpdate) and the
versions the state sees are in commit order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID, uuid4

from domain.errors import Conflict
from domain.messages import Message
from domain.session_state.model import SubscriptionSummary, Versioned
from domain.subscriptions.plans import Plan

ALREADY_SUBSCRIBED = Message("You already have a pending or active subscription.")
SUBSCRIPTION_ENDED = Message("The subscription has ended; register a new one.")


class SubscriptionStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


FINAL = frozenset({SubscriptionStatus.EXPIRED, SubscriptionStatus.CANCELLED})


@dataclass
class Subscription:
    id: UUID
    user_id: UUID
    plan: str
    status: SubscriptionStatus
    created_at: datetime
    current_period_start: datetime | None = None
    current_period_end: datetime | None = None
    activated_at: datetime | None = None
    cancelled_at: datetime | None = None
    version: int = 1  # +1 on every change (the ETag of its representation)

    @property
    def ended(self) -> bool:
        return self.status in FINAL

    def summary(self) -> SubscriptionSummary:
        return SubscriptionSummary(self.plan, self.status.value, self.current_period_end, self.id)


@dataclass(frozen=True)
class Payment:
    """A confirmed payment for a subscription; `reference` is the payer's own id for it (the
    payment provider's), unique, so one payment is never recorded twice."""

    id: UUID
    subscription_id: UUID
    reference: str
    amount: int
    currency: str
    source: str  # who confirmed it: "admin:<user id>" or "provider:<callback id>"
    received_at: datetime
    applied_at: datetime | None = None


@dataclass
class UserSubscriptions:
    """The user's newest subscription (the only one that can change) and the changes since
    it was loaded, which the repository writes on save."""

    user_id: UUID
    version: int
    current: Subscription | None = None
    added: bool = False
    changed: bool = False
    applied: list[Payment] = field(default_factory=list)

    def register(self, plan: Plan, now: datetime) -> Subscription:
        if self.current is not None and not self.current.ended:
            raise Conflict(ALREADY_SUBSCRIBED)
        # The newest is the latest created: keep it so even if the clock stood still or stepped back.
        if self.current is not None and now <= self.current.created_at:
            now = self.current.created_at + timedelta(microseconds=1)
        self.current = Subscription(uuid4(), self.user_id, plan.name, SubscriptionStatus.PENDING, now)
        self.added = True
        return self.current

    def apply(self, payment: Payment, plan: Plan, now: datetime) -> bool:
        """Activate a pending subscription for one period, or extend an active one by a period
        (from its end, or from now if it already ran out). False, with nothing changed, when
        the subscription has ended meanwhile: the payment stays unapplied."""
        subscription = self._changeable(payment.subscription_id)
        if subscription is None:
            return False
        if subscription.status == SubscriptionStatus.PENDING:
            subscription.status = SubscriptionStatus.ACTIVE
            subscription.activated_at = now
            subscription.current_period_start = now
            subscription.current_period_end = now + plan.period
        elif subscription.current_period_end is not None and subscription.current_period_end > now:
            subscription.current_period_end += plan.period  # paid ahead: the period runs on
        else:  # it ran out before the sweep marked it expired: a new period from now
            subscription.current_period_start = now
            subscription.current_period_end = now + plan.period
        self.applied.append(Payment(**{**vars(payment), "applied_at": now}))
        self._changed(subscription)
        return True

    def cancel(self, subscription_id: UUID, now: datetime) -> bool:
        """End it at once (pending or active); True when it changed. Cancelling a cancelled
        subscription changes nothing; an expired one cannot be cancelled."""
        subscription = self.current
        if subscription is None or subscription.id != subscription_id:
            raise Conflict(SUBSCRIPTION_ENDED)
        if subscription.status == SubscriptionStatus.CANCELLED:
            return False
        if subscription.status == SubscriptionStatus.EXPIRED:
            raise Conflict(SUBSCRIPTION_ENDED)
        subscription.status = SubscriptionStatus.CANCELLED
        subscription.cancelled_at = now
        self._changed(subscription)
        return True

    def expire(self, now: datetime) -> bool:
        """Mark the active subscription expired if its paid period is over."""
        subscription = self.current
        if subscription is None or subscription.status != SubscriptionStatus.ACTIVE:
            return False
        if subscription.current_period_end is None or subscription.current_period_end > now:
            return False
        subscription.status = SubscriptionStatus.EXPIRED
        self._changed(subscription)
        return True

    def summary(self) -> Versioned[SubscriptionSummary | None]:
        """The subscription group of UserState, at this version."""
        return Versioned(self.version, self.current.summary() if self.current is not None else None)

    def _changeable(self, subscription_id: UUID) -> Subscription | None:
        subscription = self.current
        if subscription is None or subscription.id != subscription_id or subscription.ended:
            return None
        return subscription

    def _changed(self, subscription: Subscription) -> None:
        subscription.version += 1
        self.changed = True
