"""/api/subscriptions and /api/premium over HTTP (DESIGN §6): registering, reading with
validators, cancelling with If-Match, payments confirmed by an admin or by the payment
provider's Standard Webhooks signed callback, and the entitlement the session state carries."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from standardwebhooks.webhooks import Webhook

from app.factory import create_app
from tests import factories
from tests.api.conftest import act_as, login
from tests.settings import TEST_ENV

PROBLEM = "application/problem+json"
CACHE = "private, no-cache"
VARY = "Accept, Authorization, Accept-Language"
SUBSCRIPTION_FIELDS = {
    "id",
    "user_id",
    "plan",
    "status",
    "created_at",
    "current_period_start",
    "current_period_end",
    "activated_at",
    "cancelled_at",
}
SECRET = (
    "whsec_"
    + base64.b64encode(
        bytes.fromhex("77994c1da04e395cdd8dfabbd2857909e78865e389b69c933bcd783e10e6be16")
    ).decode()
)
OTHER_SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
BAD_SIGNATURE = "The payment callback's signature is missing, malformed or does not match its body."
RECORDED = "This payment was already recorded."


@pytest.fixture
def app():
    """The service with signed payment callbacks enabled."""
    return create_app({**TEST_ENV, "PAYMENT_WEBHOOK_SECRET": SECRET})


@pytest.fixture
def provider(app):
    """The payment provider's client: no Authorization, only its signature."""
    return app.test_client()


def subscribe(client, plan: str = "monthly", **kwargs) -> dict:
    response = client.post("/api/subscriptions", json={"plan": plan}, **kwargs)
    assert response.status_code == 201, response.get_json()
    return {
        "json": response.get_json(),
        "url": response.headers["Location"],
        "etag": response.headers["ETag"],
    }


@pytest.fixture
def subscription(client, registered) -> dict:
    """The registered user's pending monthly subscription: its JSON, URL and ETag."""
    return subscribe(client)


def payment(subscription: dict, reference: str | None = None, **overrides) -> dict:
    body = {
        "subscription_id": subscription["json"]["id"],
        "reference": reference or f"pay_{uuid4().hex}",
        "amount": 900,
        "currency": "EUR",
    }
    return {**body, **overrides}


def signature_headers(
    body: str,
    *,
    secret: str = SECRET,
    at: datetime | None = None,
    signed_body: str | None = None,
    msg_id: str | None = None,
) -> dict[str, str]:
    at = at or datetime.now(UTC)
    msg_id = msg_id or f"msg_{uuid4().hex}"
    signature = Webhook(secret).sign(msg_id, at, body if signed_body is None else signed_body)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }


def callback(client, subscription: dict, body: dict, headers: dict[str, str] | None = None, **signing):
    """POST the payment as the provider's callback, signed unless headers are given."""
    data = json.dumps(body)
    return client.post(
        f"{subscription['url']}/payments",
        data=data,
        content_type="application/json",
        headers=signature_headers(data, **signing) if headers is None else headers,
    )


def status_of(client, subscription: dict) -> str:
    return client.get(subscription["url"]).get_json()["status"]


def assert_problem(response, status: int) -> dict:
    assert (response.status_code, response.mimetype) == (status, PROBLEM), response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["status"] == status
    return body


def assert_unchanged(client, subscription: dict) -> None:
    """Still pending, as registered, and granting nothing."""
    current = client.get(subscription["url"])
    assert (current.status_code, current.headers["ETag"]) == (200, subscription["etag"])
    assert current.get_json() == subscription["json"]
    assert_problem(client.get("/api/premium"), 403)


def other_user(client, faker) -> dict[str, str]:
    """The Authorization headers of another registered user's session."""
    data = factories.registration(faker)
    assert client.post("/api/users", json=data).status_code == 201
    return login(client, data["email"], data["password"])


# Registering and reading


def test_registering_answers_201_with_location_validators_and_the_subscription(client, registered):
    response = client.post("/api/subscriptions", json={"plan": "monthly"})
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == SUBSCRIPTION_FIELDS
    assert (body["user_id"], body["plan"], body["status"]) == (registered["json"]["id"], "monthly", "pending")
    assert (body["current_period_start"], body["current_period_end"], body["activated_at"]) == (
        None,
        None,
        None,
    )
    assert response.headers["Location"].endswith(f"/api/subscriptions/{body['id']}")
    etag = response.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert (response.headers["Cache-Control"], response.headers["Vary"]) == (CACHE, VARY)

    shown = client.get(response.headers["Location"])
    assert (shown.status_code, shown.get_json(), shown.headers["ETag"]) == (200, body, etag)
    me = client.get("/api/auth/me").get_json()
    assert me["subscription"] == {
        "id": body["id"],
        "plan": "monthly",
        "status": "pending",
        "current_period_end": None,
    }


def test_registering_needs_a_token(app):
    response = app.test_client().post("/api/subscriptions", json={"plan": "monthly"})
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_an_unknown_plan_is_422_naming_the_choices(client, registered):
    body = assert_problem(client.post("/api/subscriptions", json={"plan": "weekly"}), 422)
    assert body["errors"] == {"plan": ["Must be one of: monthly, yearly."]}
    assert client.get("/api/auth/me").get_json()["subscription"] is None


def test_a_second_subscription_while_one_is_pending_is_409(client, subscription):
    body = assert_problem(client.post("/api/subscriptions", json={"plan": "yearly"}), 409)
    assert body["detail"] == "You already have a pending or active subscription."
    assert client.get("/api/auth/me").get_json()["subscription"]["id"] == subscription["json"]["id"]


def test_a_subscription_is_shown_to_its_user_and_admins_only(client, subscription, admin, faker):
    assert client.get(subscription["url"]).status_code == 200
    stranger = other_user(client, faker)
    assert_problem(client.get(subscription["url"], headers=stranger), 404)
    assert_problem(client.post(f"{subscription['url']}/cancel", headers=stranger), 404)
    assert_problem(client.get(f"/api/subscriptions/{uuid4()}"), 404)
    shown = client.get(subscription["url"], headers=admin)
    assert (shown.status_code, shown.get_json()) == (200, subscription["json"])
    assert status_of(client, subscription) == "pending"


def test_if_none_match_gets_a_304_with_its_validators_and_no_body(client, subscription):
    response = client.get(subscription["url"], headers={"If-None-Match": subscription["etag"]})
    assert (response.status_code, response.data) == (304, b"")
    assert (response.headers["ETag"], response.headers["Cache-Control"], response.headers["Vary"]) == (
        subscription["etag"],
        CACHE,
        VARY,
    )
    weak = client.get(subscription["url"], headers={"If-None-Match": f"W/{subscription['etag']}"})
    assert weak.status_code == 304
    other = client.get(subscription["url"], headers={"If-None-Match": '"r1-something-else"'})
    assert (other.status_code, other.get_json()) == (200, subscription["json"])


def test_conversation_get_304_cancel_with_if_match_new_etag_then_412(client, subscription):
    url, etag = subscription["url"], subscription["etag"]
    first = client.get(url)
    assert (first.status_code, first.headers["ETag"]) == (200, etag)
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304

    cancelled = client.post(f"{url}/cancel", headers={"If-Match": etag})
    assert cancelled.status_code == 200
    new_etag = cancelled.headers["ETag"]
    assert new_etag != etag and cancelled.headers["Cache-Control"] == CACHE
    assert cancelled.get_json()["status"] == "cancelled" and cancelled.get_json()["cancelled_at"] is not None
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 200
    assert client.get(url, headers={"If-None-Match": new_etag}).status_code == 304

    stale = client.post(f"{url}/cancel", headers={"If-Match": etag})
    assert_problem(stale, 412)
    current = client.get(url)
    assert (current.headers["ETag"], current.get_json()) == (new_etag, cancelled.get_json())
    again = client.post(f"{url}/cancel")  # without If-Match: cancelling again changes nothing
    assert (again.status_code, again.headers["ETag"]) == (200, new_etag)


# Payments and entitlement


def test_an_admins_payment_is_accepted_with_a_location_and_the_payment_id(client, subscription, admin):
    response = client.post(f"{subscription['url']}/payments", json=payment(subscription), headers=admin)
    assert response.status_code == 202, response.get_json()
    assert response.headers["Location"] == subscription["url"]
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["subscription_id"] == subscription["json"]["id"]
    assert set(body) == {"payment_id", "subscription_id"}, body


def test_a_payment_entitles_at_once_and_a_cancel_ends_it(client, subscription, admin):
    denied = assert_problem(client.get("/api/premium"), 403)
    assert "premium" in denied["detail"]

    paid = client.post(f"{subscription['url']}/payments", json=payment(subscription), headers=admin)
    assert paid.status_code == 202, paid.get_json()

    active = client.get(subscription["url"]).get_json()
    assert active["status"] == "active" and active["current_period_end"] is not None
    premium = client.get("/api/premium")  # the same token, the very next request
    assert premium.status_code == 200
    assert premium.get_json() == {
        "feature": "premium",
        "plan": "monthly",
        "until": active["current_period_end"],
    }
    assert premium.headers["Cache-Control"] == "private, no-store"
    assert client.get("/api/auth/me").get_json()["subscription"] == {
        "id": subscription["json"]["id"],
        "plan": "monthly",
        "status": "active",
        "current_period_end": active["current_period_end"],
    }

    assert client.post(f"{subscription['url']}/cancel").status_code == 200
    assert_problem(client.get("/api/premium"), 403)
    assert client.get("/api/auth/me").get_json()["subscription"]["status"] == "cancelled"


def test_a_payment_needs_an_admin_or_a_signature(app, client, subscription):
    assert_problem(client.post(f"{subscription['url']}/payments", json=payment(subscription)), 403)
    anonymous = app.test_client().post(f"{subscription['url']}/payments", json=payment(subscription))
    body = assert_problem(anonymous, 401)
    assert body["detail"] == "An admin's access token or a signed payment callback is required."
    assert_unchanged(client, subscription)


def test_a_callback_with_an_overlong_id_is_401_and_changes_nothing(client, provider, subscription):
    response = callback(provider, subscription, payment(subscription), msg_id="m" * 201)
    body = assert_problem(response, 401)
    assert body["detail"] == "The payment callback's webhook-id is longer than 200 characters."
    assert_unchanged(client, subscription)
    assert callback(provider, subscription, payment(subscription), msg_id="m" * 200).status_code == 202


def test_a_correctly_signed_callback_activates_the_subscription(client, provider, subscription):
    response = callback(provider, subscription, payment(subscription))
    assert response.status_code == 202, response.get_json()
    assert status_of(client, subscription) == "active"
    assert client.get("/api/premium").status_code == 200


def _only_an_id(data: str) -> dict[str, str]:
    return {"webhook-id": "msg_lonely"}


def _wrong_secret(data: str) -> dict[str, str]:
    return signature_headers(data, secret=OTHER_SECRET)


def _other_body(data: str) -> dict[str, str]:
    return signature_headers(data, signed_body=data.replace('"amount": 900', '"amount": 9000'))


def _replace_signature(value: str):
    def tamper(data: str) -> dict[str, str]:
        return {**signature_headers(data), "webhook-signature": value}

    return tamper


def _other_version(data: str) -> dict[str, str]:
    headers = signature_headers(data)
    return {**headers, "webhook-signature": headers["webhook-signature"].replace("v1,", "v2,")}


def _timestamp_not_a_number(data: str) -> dict[str, str]:
    return {**signature_headers(data), "webhook-timestamp": "yesterday"}


@pytest.mark.parametrize(
    "headers_for",
    [
        _only_an_id,
        _wrong_secret,
        _other_body,
        _replace_signature("v1"),
        _replace_signature("v1,abc"),
        _replace_signature("v1,%%%%"),
        _replace_signature(""),
        _other_version,
        _timestamp_not_a_number,
    ],
    ids=[
        "only-an-id",
        "wrong-secret",
        "other-body",
        "v1-without-comma",
        "bad-base64",
        "no-base64-at-all",
        "empty-signature",
        "unknown-version",
        "timestamp-not-a-number",
    ],
)
def test_a_callback_without_a_valid_signature_is_401_and_changes_nothing(
    client, provider, subscription, headers_for
):
    data = json.dumps(payment(subscription))
    response = provider.post(
        f"{subscription['url']}/payments",
        data=data,
        content_type="application/json",
        headers=headers_for(data),
    )
    body = assert_problem(response, 401)
    assert body["detail"] == BAD_SIGNATURE
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert_unchanged(client, subscription)


@pytest.mark.parametrize("offset", [timedelta(minutes=-10), timedelta(minutes=10)], ids=["old", "future"])
def test_a_callback_whose_timestamp_is_off_by_ten_minutes_is_401(client, provider, subscription, offset):
    response = callback(provider, subscription, payment(subscription), at=datetime.now(UTC) + offset)
    body = assert_problem(response, 401)
    assert "timestamp" in body["detail"]
    assert_unchanged(client, subscription)


def test_an_exact_replay_of_a_callback_is_409_and_changes_nothing(client, provider, subscription):
    data = json.dumps(payment(subscription))
    headers = signature_headers(data)
    url = f"{subscription['url']}/payments"
    assert provider.post(url, data=data, content_type="application/json", headers=headers).status_code == 202
    paid = client.get(subscription["url"])

    replay = provider.post(url, data=data, content_type="application/json", headers=headers)

    assert assert_problem(replay, 409)["detail"] == RECORDED
    after = client.get(subscription["url"])
    assert (after.headers["ETag"], after.get_json()) == (paid.headers["ETag"], paid.get_json())
    assert after.get_json()["current_period_end"] is not None  # one period, not two


def test_a_signed_callback_is_401_when_the_service_has_no_secret(faker):
    client = create_app(TEST_ENV).test_client()
    data = factories.registration(faker)
    assert client.post("/api/users", json=data).status_code == 201
    act_as(client, login(client, data["email"], data["password"]))
    subscription = subscribe(client)

    response = callback(client, subscription, payment(subscription))

    body = assert_problem(response, 401)
    assert body["detail"] == "Signed payment callbacks are not enabled on this service."
    assert_unchanged(client, subscription)


def test_a_signed_callback_for_another_subscription_than_the_urls_is_422(client, provider, subscription):
    response = callback(provider, subscription, payment(subscription, subscription_id=str(uuid4())))
    body = assert_problem(response, 422)
    assert list(body["errors"]) == ["subscription_id"]
    assert_unchanged(client, subscription)


@pytest.mark.parametrize("wrong", [{"amount": 100}, {"currency": "USD"}], ids=["amount", "currency"])
def test_a_signed_callback_with_the_wrong_price_is_422(client, provider, subscription, wrong):
    body = assert_problem(callback(provider, subscription, payment(subscription, **wrong)), 422)
    assert body["errors"] == {"amount": ["The plan costs 900 EUR."]}
    assert_unchanged(client, subscription)


def test_openapi_documents_the_subscription_paths(client):
    paths = client.get("/api/openapi.json").get_json()["paths"]
    expected = {
        "/api/subscriptions": "post",
        "/api/subscriptions/{subscription_id}": "get",
        "/api/subscriptions/{subscription_id}/cancel": "post",
        "/api/subscriptions/{subscription_id}/payments": "post",
        "/api/premium": "get",
    }
    for path, method in expected.items():
        assert method in paths.get(path, {}), path
    payments = paths.pop("/api/subscriptions/{subscription_id}/payments")["post"]
    for path, method in expected.items():
        if path in paths:
            assert paths[path][method]["security"] == [{"bearerAuth": []}]
    # An admin's token, or the provider's signature instead.
    assert payments["security"] == [{"bearerAuth": []}, {"paymentSignature": []}]
    assert "Location" in payments["responses"]["202"]["headers"]
    callback_headers = {p["name"] for p in payments["parameters"]}
    assert {"webhook-id", "webhook-timestamp", "webhook-signature"} <= callback_headers
    schemes = client.get("/api/openapi.json").get_json()["components"]["securitySchemes"]
    assert schemes["paymentSignature"]["name"] == "webhook-signature"
