"""The subscription settings: plans as configuration, the payment provider's secret; a bad value
stops the service at start with a message naming the variable."""

from __future__ import annotations

import base64
import json

import pytest

from app import config
from app.containers import build_plans
from tests.settings import TEST_ENV

SECRET_24 = base64.b64encode(b"x" * 24).decode()


def load(**overrides: str) -> dict:
    return config.load({**TEST_ENV, **overrides})


def test_the_default_plans_are_monthly_and_yearly_with_the_premium_feature() -> None:
    plans = build_plans(load()["subscriptions"]["plans"])
    assert plans.names() == ["monthly", "yearly"]
    monthly = plans.get("monthly")
    assert (monthly.period.days, monthly.price, monthly.currency, monthly.features) == (
        30,
        900,
        "EUR",
        frozenset({"premium"}),
    )


def test_plans_come_from_subscription_plans() -> None:
    raw = {"pro": {"period_days": 7, "price": 0, "currency": "USD", "features": ["reports", "premium"]}}
    plans = build_plans(load(SUBSCRIPTION_PLANS=json.dumps(raw))["subscriptions"]["plans"])
    assert plans.names() == ["pro"]
    assert (plans.get("pro").period.days, plans.get("pro").features) == (7, frozenset({"reports", "premium"}))


@pytest.mark.parametrize(
    "raw, says",
    [
        ("{not json", "not valid JSON"),
        ("{}", "non-empty JSON object"),
        ('{"Pro Plan": {"period_days": 1, "price": 1, "currency": "EUR", "features": []}}', "plan name"),
        ('{"pro": {"period_days": 1, "price": 1, "currency": "EUR"}}', "exactly period_days"),
        ('{"pro": {"period_days": 0, "price": 1, "currency": "EUR", "features": []}}', "positive integer"),
        ('{"pro": {"period_days": 1, "price": -1, "currency": "EUR", "features": []}}', "price one >= 0"),
        ('{"pro": {"period_days": 1, "price": 1.5, "currency": "EUR", "features": []}}', "price one >= 0"),
        ('{"pro": {"period_days": 1, "price": 1, "currency": "eur", "features": []}}', "ISO 4217"),
        ('{"pro": {"period_days": 1, "price": 1, "currency": "EUR", "features": [""]}}', "list of names"),
    ],
)
def test_malformed_plans_stop_the_service_naming_the_variable(raw: str, says: str) -> None:
    with pytest.raises(config.ConfigError, match="SUBSCRIPTION_PLANS") as error:
        load(SUBSCRIPTION_PLANS=raw)
    assert says in str(error.value)


def test_the_webhook_secret_is_optional_and_kept_as_given() -> None:
    assert load()["subscriptions"]["webhook_secret"] is None
    assert load(PAYMENT_WEBHOOK_SECRET=f"whsec_{SECRET_24}")["subscriptions"]["webhook_secret"] == (
        f"whsec_{SECRET_24}"
    )
    unpadded = base64.b64encode(b"y" * 25).decode().rstrip("=")
    assert load(PAYMENT_WEBHOOK_SECRET=unpadded)["subscriptions"]["webhook_secret"] == unpadded


@pytest.mark.parametrize("secret", ["whsec_" + base64.b64encode(b"x" * 23).decode(), "whsec_not base64!"])
def test_a_short_or_malformed_webhook_secret_stops_the_service(secret: str) -> None:
    with pytest.raises(config.ConfigError, match="PAYMENT_WEBHOOK_SECRET"):
        load(PAYMENT_WEBHOOK_SECRET=secret)
