"""Plans: what a subscription buys, for how long, at what price. They are configuration
(`SUBSCRIPTION_PLANS`), not code; the domain only reads the catalog it is given."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.session_state.model import SubscriptionSummary


@dataclass(frozen=True)
class Plan:
    name: str
    period: timedelta
    price: int  # in the currency's minor unit (cents)
    currency: str  # ISO 4217, upper case
    features: frozenset[str]


class Plans:
    def __init__(self, plans: Mapping[str, Plan]) -> None:
        self._plans = dict(plans)

    def get(self, name: str) -> Plan | None:
        return self._plans.get(name)

    def names(self) -> list[str]:
        return sorted(self._plans)

    def entitles(self, summary: SubscriptionSummary | None, feature: str, now: datetime) -> bool:
        """Whether the subscription, as summarised, grants the feature now: active, its paid
        period not over (even before the sweep marks it expired), and its plan including the
        feature. A plan no longer configured grants nothing."""
        if summary is None or summary.status != "active":
            return False
        if summary.current_period_end is None or summary.current_period_end <= now:
            return False
        plan = self._plans.get(summary.plan)
        return plan is not None and feature in plan.features
