"""/api/auth and the admin-only and per-user parts of /api/users over HTTP (DESIGN §6, §7): token
responses, problem bodies, login that reveals nothing, throttling, who may do what, roles and
status changes that take effect on the very next request, the activity log, the OpenAPI document."""

from __future__ import annotations

import statistics
import time

import pytest
from prometheus_client import REGISTRY

from app.factory import create_app
from tests import factories
from tests.api.conftest import login, make_admin
from tests.settings import TEST_ENV

PROBLEM = "application/problem+json"
TOKEN_FIELDS = {"access_token", "token_type", "expires_in", "refresh_token", "user_id", "session_id"}


def bearer(body: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {body['access_token']}"}


def post_login(client, email: str, password: str, address: str = "192.0.2.1", **kwargs):
    return client.post(
        "/api/auth/login",
        json={"email": email, "password": password},
        environ_base={"REMOTE_ADDR": address},
        **kwargs,
    )


def assert_unauthenticated(response) -> None:
    assert response.status_code == 401 and response.mimetype == PROBLEM
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.get_json()["status"] == 401


def new_user(client, faker) -> dict:
    """A registered user (not logged in): its representation and password."""
    data = factories.registration(faker)
    body = client.post("/api/users", json=data).get_json()
    return {**body, "password": data["password"], "url": f"/api/users/{body['id']}"}


def user_misses() -> float:
    """How many reads of a user by id the read cache could not answer, so far."""
    return REGISTRY.get_sample_value("cache_misses_total", {"policy": "user_by_id"}) or 0.0


def test_login_answers_an_uncacheable_token_pair_and_me_shows_the_session(client, registered):
    email, user_id = registered["json"]["email"], registered["json"]["id"]
    response = post_login(client, email.upper(), registered["password"])
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert set(body) == TOKEN_FIELDS | {"device_token"}  # a login's; a refresh has none
    assert (body["token_type"], body["expires_in"], body["user_id"]) == ("Bearer", 900, user_id)

    me = client.get("/api/auth/me", headers=bearer(body))
    assert me.status_code == 200 and me.headers["Cache-Control"] == "private, no-store"
    assert {k: v for k, v in me.get_json().items() if k != "last_login_at"} == {
        "id": user_id,
        "email": email,
        "roles": ["user"],
        "session_id": body["session_id"],
        "subscription": None,
    }
    assert me.get_json()["last_login_at"] is not None


def test_refresh_rotates_and_a_reused_token_ends_the_session(client, registered):
    first = post_login(client, registered["json"]["email"], registered["password"]).get_json()
    renewed = client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert renewed.status_code == 200 and renewed.headers["Cache-Control"] == "no-store"
    second = renewed.get_json()
    assert set(second) == TOKEN_FIELDS and second["session_id"] == first["session_id"]
    assert second["refresh_token"] != first["refresh_token"]
    assert client.get("/api/auth/me", headers=bearer(second)).status_code == 200

    assert_unauthenticated(client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]}))
    assert_unauthenticated(client.get("/api/auth/me", headers=bearer(second)))
    assert_unauthenticated(client.post("/api/auth/refresh", json={"refresh_token": second["refresh_token"]}))
    assert_unauthenticated(client.post("/api/auth/refresh", json={"refresh_token": "made-up"}))


def test_logout_ends_the_session_at_once(client, registered):
    body = post_login(client, registered["json"]["email"], registered["password"]).get_json()
    response = client.post("/api/auth/logout", headers=bearer(body))
    assert (response.status_code, response.data, response.headers["Cache-Control"]) == (204, b"", "no-store")
    assert_unauthenticated(client.get("/api/auth/me", headers=bearer(body)))
    assert_unauthenticated(client.post("/api/auth/logout", headers=bearer(body)))
    assert_unauthenticated(client.post("/api/auth/refresh", json={"refresh_token": body["refresh_token"]}))
    assert client.get("/api/auth/me").status_code == 200  # the fixture's own session lives on


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer not-a-jwt"}, {"Authorization": "Basic eDp5"}]
)
def test_me_without_a_valid_token_is_401_with_a_bearer_challenge(client, headers):
    response = client.get("/api/auth/me", headers=headers)
    assert_unauthenticated(response)
    assert set(response.get_json()) == {"type", "title", "status", "detail"}


@pytest.mark.parametrize(
    ("path", "request_kwargs", "status", "fields"),
    [
        ("/api/auth/login", {"json": {}}, 422, {"email", "password"}),
        ("/api/auth/login", {"json": {"email": "a@example.com"}}, 422, {"password"}),
        ("/api/auth/login", {"json": {"email": 5, "password": "Secret123"}}, 422, {"email"}),
        ("/api/auth/login", {"data": "{nope", "content_type": "application/json"}, 400, None),
        ("/api/auth/refresh", {"json": {}}, 422, {"refresh_token"}),
        ("/api/auth/refresh", {"data": "[", "content_type": "application/json"}, 400, None),
    ],
)
def test_malformed_bodies_get_problems(client, path, request_kwargs, status, fields):
    response = client.post(path, **request_kwargs)
    assert (response.status_code, response.mimetype) == (status, PROBLEM)
    assert response.get_json()["status"] == status
    assert (set(response.get_json()["errors"]) if fields else response.get_json().get("errors")) == fields


def test_unknown_email_and_wrong_password_answer_alike_for_one_verification_each(
    app, client, registered, faker, monkeypatch
):
    hasher, verified = app.extensions["container"].hasher(), []
    real_verify = hasher.verify
    monkeypatch.setattr(
        hasher, "verify", lambda digest, password: verified.append(1) or real_verify(digest, password)
    )

    unknown = post_login(client, faker.unique.email(), registered["password"])
    assert len(verified) == 1
    wrong = post_login(client, registered["json"]["email"], "Wrong1234")
    assert len(verified) == 2

    assert_unauthenticated(unknown)
    assert (unknown.status_code, unknown.data) == (wrong.status_code, wrong.data)

    def headers(response) -> list:  # all but the request's id, a new one per request
        return sorted((name, value) for name, value in response.headers.items() if name != "X-Request-ID")

    assert headers(unknown) == headers(wrong)


def test_unknown_email_costs_as_long_as_a_wrong_password_at_the_real_argon2_cost(faker):
    env = {k: v for k, v in TEST_ENV.items() if not k.startswith("ARGON2_")}
    client = create_app(env).test_client()
    user = new_user(client, faker)
    addresses = iter(faker.unique.ipv4() for _ in range(11))  # one each: nothing is throttled
    post_login(client, faker.unique.email(), "Guess1234", next(addresses))  # the decoy hash is made once

    def timed(email: str) -> float:
        start = time.perf_counter()
        assert post_login(client, email, "Guess1234", next(addresses)).status_code == 401
        return time.perf_counter() - start

    unknown, wrong = [], []
    for _ in range(5):
        unknown.append(timed(faker.unique.email()))
        wrong.append(timed(user["email"]))
    ratio = statistics.median(unknown) / statistics.median(wrong)
    assert 0.5 < ratio < 2, (unknown, wrong)


def test_five_failures_from_one_client_get_429_while_another_client_logs_in(client, registered):
    email, password = registered["json"]["email"], registered["password"]
    for _ in range(5):
        assert post_login(client, email, "Wrong1234", "198.51.100.7").status_code == 401
    throttled = post_login(client, email, password, "198.51.100.7")
    assert (throttled.status_code, throttled.mimetype) == (429, PROBLEM)
    assert 0 < int(throttled.headers["Retry-After"]) <= 15 * 60
    assert throttled.get_json()["status"] == 429
    assert post_login(client, email, password, "198.51.100.8").status_code == 200


def test_a_user_may_act_on_itself_only_and_an_admin_on_anyone(client, registered, admin, faker):
    other = new_user(client, faker)
    url = other["url"]
    denied = [
        client.get(url),
        client.patch(url, json={"initials": "XX"}),
        client.delete(url),
        client.get(f"{url}/activity"),
        client.get("/api/users"),
        *(
            client.put(f"{target}/roles", json={"roles": ["user", "admin"]})
            for target in (url, registered["url"])
        ),
        *(client.put(f"{target}/status", json={"status": "disabled"}) for target in (url, registered["url"])),
    ]
    assert [(r.status_code, r.mimetype) for r in denied] == [(403, PROBLEM)] * len(denied)
    assert client.get(url, headers=admin).get_json()["initials"] == other["initials"]  # nothing was written
    assert client.get("/api/auth/me").get_json()["roles"] == ["user"]

    assert client.get(url, headers=admin).status_code == 200
    assert client.patch(url, json={"initials": "AD"}, headers=admin).get_json()["initials"] == "AD"
    assert client.get(f"{url}/activity", headers=admin).status_code == 200
    assert client.get("/api/users", headers=admin).get_json()["total"] == 3
    assert client.put(f"{url}/roles", json={"roles": ["user"]}, headers=admin).status_code == 200
    assert client.put(f"{url}/status", json={"status": "active"}, headers=admin).status_code == 200
    assert client.delete(url, headers=admin).status_code == 204
    assert client.get(url, headers=admin).status_code == 404


def test_new_roles_reach_the_users_session_and_cached_reads_at_once(client, registered, admin):
    url = registered["url"]
    misses = user_misses()
    before = [client.get(url), client.get(url)]  # the second from the read cache
    assert [r.get_json()["roles"] for r in before] == [["user"], ["user"]] and user_misses() - misses == 1

    changed = client.put(f"{url}/roles", json={"roles": ["user", "admin"]}, headers=admin)
    assert changed.status_code == 200
    assert changed.get_json() == {**registered["json"], "roles": ["admin", "user"]}
    assert changed.headers["ETag"] not in (registered["etag"], before[1].headers["ETag"])

    assert client.get("/api/auth/me").get_json()["roles"] == ["admin", "user"]  # the same token
    misses = user_misses()
    after = [client.get(url), client.get(url)]
    assert user_misses() - misses == 1  # the second came from the cache again
    assert [(r.get_json()["roles"], r.headers["ETag"]) for r in after] == [
        (["admin", "user"], changed.headers["ETag"])
    ] * 2
    assert client.get("/api/users").status_code == 200  # the session has the admin's powers now


def test_an_unknown_role_is_422(client, registered, admin):
    response = client.put(f"{registered['url']}/roles", json={"roles": ["user", "root"]}, headers=admin)
    assert (response.status_code, response.mimetype) == (422, PROBLEM)
    assert list(response.get_json()["errors"]) == ["roles"]
    assert client.get("/api/auth/me").get_json()["roles"] == ["user"]


def test_disabling_locks_the_user_out_at_once_and_enabling_lets_it_log_in(client, registered, admin):
    email, password, url = registered["json"]["email"], registered["password"], registered["url"]
    disabled = client.put(f"{url}/status", json={"status": "disabled"}, headers=admin)
    assert disabled.status_code == 200
    assert_unauthenticated(client.get("/api/auth/me"))
    assert_unauthenticated(client.get(url))
    assert_unauthenticated(post_login(client, email, password))

    assert client.put(f"{url}/status", json={"status": "active"}, headers=admin).status_code == 200
    assert_unauthenticated(client.get("/api/auth/me"))  # the ended session stays ended
    assert client.get("/api/auth/me", headers=login(client, email, password)).status_code == 200


def test_activity_lists_logins_refreshes_and_logouts_newest_first(client, faker, admin):
    user = new_user(client, faker)
    origin = {"environ_base": {"REMOTE_ADDR": "203.0.113.5"}, "headers": {"User-Agent": "pytest-agent/1.0"}}
    tokens = post_login(client, user["email"], user["password"], "203.0.113.5", headers=origin["headers"])
    renewed = client.post(
        "/api/auth/refresh", json={"refresh_token": tokens.get_json()["refresh_token"]}, **origin
    )
    logout_headers = {**origin["headers"], **bearer(renewed.get_json())}
    assert (
        client.post(
            "/api/auth/logout", headers=logout_headers, environ_base=origin["environ_base"]
        ).status_code
        == 204
    )

    response = client.get(f"{user['url']}/activity", headers=admin)
    assert response.status_code == 200
    assert (response.headers["Cache-Control"], response.headers["Vary"]) == (
        "private, no-cache",
        "Authorization",
    )
    body = response.get_json()
    assert [(r["kind"], r["client_address"], r["user_agent"]) for r in body["items"]] == [
        (kind, "203.0.113.5", "pytest-agent/1.0") for kind in ("logout", "refresh", "login")
    ]
    times = [r["occurred_at"] for r in body["items"]]
    assert times == sorted(times, reverse=True)

    first = client.get(f"{user['url']}/activity?page_size=2", headers=admin).get_json()
    second = client.get(f"{user['url']}/activity?page=2&page_size=2", headers=admin).get_json()
    assert (first["total"], first["page_size"]) == (3, 2)
    assert [r["kind"] for r in first["items"]] == ["logout", "refresh"]
    assert (second["page"], [r["kind"] for r in second["items"]]) == (2, ["login"])


def test_openapi_documents_bearer_auth_and_the_new_paths(client):
    document = client.get("/api/openapi.json").get_json()
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert scheme == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    paths = document["paths"]
    auth = {f"/api/auth/{name}" for name in ("login", "refresh", "logout", "me")}
    assert auth | {f"/api/users/{{user_id}}/{name}" for name in ("roles", "status", "activity")} <= set(paths)
    assert paths["/api/auth/me"]["get"]["security"] == [{"bearerAuth": []}]
    assert paths["/api/users/{user_id}/roles"]["put"]["security"] == [{"bearerAuth": []}]
    assert "security" not in paths["/api/auth/login"]["post"]


def test_the_last_active_admin_can_neither_demote_nor_disable_itself(app, client, admin, faker):
    me = client.get("/api/auth/me", headers=admin).get_json()
    url = f"/api/users/{me['id']}"
    for change in (("roles", {"roles": ["user"]}), ("status", {"status": "disabled"})):
        refused = client.put(f"{url}/{change[0]}", json=change[1], headers=admin)
        assert refused.status_code == 409, refused.get_json()
        assert "last active admin" in refused.get_json()["detail"]
    assert client.get("/api/auth/me", headers=admin).get_json()["roles"] == ["admin", "user"]
    other = make_admin(app, faker)  # a second admin: now either may step down
    assert client.put(f"{url}/roles", json={"roles": ["user"]}, headers=admin).status_code == 200
    other_id = client.get("/api/auth/me", headers=other).get_json()["id"]
    assert (
        client.put(f"/api/users/{other_id}/status", json={"status": "disabled"}, headers=other).status_code
        == 409
    )


def test_a_known_device_logs_in_while_sprayed_failures_lock_everyone_else_out(app, client, registered):
    """20 wrong passwords from 20 addresses block the account for those without a device token;
    the device that logged in before still gets in, and its own failures block only itself."""
    email, password = registered["json"]["email"], registered["password"]
    device_token = post_login(client, email, password).get_json()["device_token"]

    def attempt(address: str, secret: str, device: str | None = None):
        body = {"email": email, "password": secret, **({"device_token": device} if device else {})}
        return client.post("/api/auth/login", json=body, environ_overrides={"REMOTE_ADDR": address})

    for n in range(20):
        assert attempt(f"10.9.0.{n}", "Wrong-pass1").status_code == 401
    assert attempt("10.9.1.1", password).status_code == 429  # a new device: locked out with the attacker
    known = attempt("10.9.1.1", password, device_token)
    assert known.status_code == 200
    assert known.get_json()["device_token"] == device_token  # the same device, known again

    forged = device_token.split(".")[0] + ".AAAA"
    assert attempt("10.9.1.1", password, forged).status_code == 429  # a forged token is no token
    other = app.extensions["container"].devices().issue("another account")
    assert attempt("10.9.1.1", password, other).status_code == 429  # nor is another account's
    for _ in range(5):  # the device's own failures
        assert attempt("10.9.1.2", "Wrong-pass1", device_token).status_code == 401
    assert attempt("10.9.1.2", password, device_token).status_code == 429


def test_the_last_active_admin_cannot_delete_itself_either(app, client, admin, faker):
    me = client.get("/api/auth/me", headers=admin).get_json()
    refused = client.delete(f"/api/users/{me['id']}", headers=admin)
    assert refused.status_code == 409 and "last active admin" in refused.get_json()["detail"]
    other = make_admin(app, faker)
    assert client.delete(f"/api/users/{me['id']}", headers=admin).status_code == 204
    other_id = client.get("/api/auth/me", headers=other).get_json()["id"]
    assert client.delete(f"/api/users/{other_id}", headers=other).status_code == 409
