"""Commands of the subscriptions context. `user_id` on a command about an existing
subscription names the person acting on their own subscription; None means an admin."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from domain.conditions import UNCONDITIONAL, VersionCondition
from domain.messages import Command


@dataclass(frozen=True, kw_only=True)
class RegisterSubscription(Command):
    user_id: UUID
    plan: str


@dataclass(frozen=True, kw_only=True)
class CancelSubscription(Command):
    subscription_id: UUID
    user_id: UUID | None
    condition: VersionCondition = UNCONDITIONAL  # If-Match, If-None-Match


@dataclass(frozen=True, kw_only=True)
class ConfirmPayment(Command):
    """A payment for the subscription was received (an admin's word, or the payment
    provider's signed callback)."""

    subscription_id: UUID
    reference: str
    amount: int
    currency: str
    source: str


@dataclass(frozen=True, kw_only=True)
class SweepSubscriptions(Command):
    """Expire the subscriptions whose paid period is over, and apply the payments whose
    activation did not happen (its consumer failed, or the process stopped)."""

    limit: int = 1000
