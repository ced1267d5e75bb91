"""Events of the subscriptions context."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from domain.messages import Event


@dataclass(frozen=True, kw_only=True)
class SubscriptionRegistered(Event):
    user_id: UUID
    subscription_id: UUID
    plan: str


@dataclass(frozen=True, kw_only=True)
class PaymentConfirmed(Event):
    """Recorded, not yet applied: its consumer activates or extends the subscription."""

    user_id: UUID
    subscription_id: UUID
    payment_id: UUID


@dataclass(frozen=True, kw_only=True)
class SubscriptionActivated(Event):
    user_id: UUID
    subscription_id: UUID
    plan: str
    current_period_end: datetime


@dataclass(frozen=True, kw_only=True)
class UserSubscriptionStatusChanged(Event):
    """The user's subscription summary at `version` (the user's subscriptions version): what
    the subscription group of UserState must now say."""

    user_id: UUID
    subscription_id: UUID
    plan: str
    status: str
    current_period_end: datetime | None
    version: int
