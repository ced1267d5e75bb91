"""Subscriptions across two gunicorn servers sharing Redis and one database: a payment provider's
signed callback accepted by one process entitles the user on the other at once, and a
cancellation on one ends it on the other at once (I1 for the subscription group)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

from tests import factories
from tests.e2e.conftest import WEBHOOK_SECRET, Server, login_everywhere

JSON = {"Content-Type": "application/json"}
ROUNDS = 10


def post(server: Server, path: str, body: dict, headers: dict | None = None):
    return server.request("POST", path, json.dumps(body).encode(), {**JSON, **(headers or {})})


def callback(server: Server, subscription_id: str, reference: str):
    """The payment provider's call: signed, and without the user's token."""
    body = json.dumps(
        {"subscription_id": subscription_id, "reference": reference, "amount": 900, "currency": "EUR"}
    )
    callback_id, now = f"msg_{uuid.uuid4().hex}", datetime.now(UTC)
    headers = {
        **JSON,
        "Authorization": "",
        "webhook-id": callback_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(WEBHOOK_SECRET).sign(callback_id, now, body),
    }
    return server.request("POST", f"/api/subscriptions/{subscription_id}/payments", body.encode(), headers)


def test_a_payment_on_one_process_entitles_on_the_other_at_once(
    servers: tuple[Server, Server], faker
) -> None:
    a, b = servers
    data = factories.registration(faker)
    assert post(a, "/api/users", data).status == 201
    login_everywhere(servers, data["email"], data["password"])
    for round_ in range(ROUNDS):
        created = post(a, "/api/subscriptions", {"plan": "monthly"})
        assert created.status == 201, created.body
        subscription_id = json.loads(created.body)["id"]
        assert b.request("GET", "/api/premium").status == 403, f"round {round_}: entitled before paying"

        paid = callback(a, subscription_id, f"pay-{round_}-{uuid.uuid4().hex}")
        assert paid.status == 202, paid.body
        assert b.request("GET", "/api/premium").status == 200, f"round {round_}: B does not see the payment"
        me = json.loads(b.request("GET", "/api/auth/me").body)
        assert (me["subscription"]["id"], me["subscription"]["status"]) == (subscription_id, "active")

        assert post(b, f"/api/subscriptions/{subscription_id}/cancel", {}).status == 200
        assert a.request("GET", "/api/premium").status == 403, f"round {round_}: A missed the cancellation"
