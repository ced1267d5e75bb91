"""Read-side messages of the subscriptions context."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from domain.session_state.model import SubscriptionSummary


@dataclass(frozen=True)
class GetSubscription:
    subscription_id: UUID
    user_id: UUID | None  # the reader's own subscriptions only; None for an admin


@dataclass(frozen=True)
class CheckEntitlement:
    """Whether a subscription, as the session state summarises it, grants a feature now."""

    subscription: SubscriptionSummary | None
    feature: str
