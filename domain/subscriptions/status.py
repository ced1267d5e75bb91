"""The event that carries a user's subscription summary to UserState."""

from __future__ import annotations

from datetime import datetime

from domain.messages import DEFAULT_LOCALE
from domain.subscriptions.events import UserSubscriptionStatusChanged
from domain.subscriptions.model import UserSubscriptions


def status_changed(
    subscriptions: UserSubscriptions, now: datetime, locale: str = DEFAULT_LOCALE
) -> UserSubscriptionStatusChanged:
    """The summary as saved (its version is the one `save` gave it)."""
    current = subscriptions.current
    assert current is not None
    return UserSubscriptionStatusChanged(
        user_id=subscriptions.user_id,
        subscription_id=current.id,
        plan=current.plan,
        status=current.status.value,
        current_period_end=current.current_period_end,
        version=subscriptions.version,
        occurred_at=now,
        locale=locale,
    )
