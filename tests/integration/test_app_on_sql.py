"""The whole app over HTTP on the SQL adapters (a migrated SQLite file, a PostgreSQL schema),
as the embedded default and production run it."""

from __future__ import annotations

import json

import pytest

from app.factory import create_app
from tests import factories
from tests.api.conftest import act_as, login, make_admin, token_from
from tests.integration.backends import app_on_sql
from tests.settings import TEST_ENV


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def app(request, tmp_path):
    with app_on_sql(request, tmp_path) as app:
        yield app


def test_account_lifecycle_with_conditional_requests(app, faker):
    client = app.test_client()
    outbox = app.extensions["container"].mailer().outbox
    data = factories.registration(faker)

    created = client.post("/api/users", json=data)
    assert created.status_code == 201
    url, etag = created.headers["Location"], created.headers["ETag"]
    assert client.post("/api/users", json=data).status_code == 409
    act_as(client, login(client, data["email"], data["password"]))

    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    confirmed = client.post("/api/users/confirm", json={"token": token_from(outbox, "confirm_email")})
    assert confirmed.status_code == 200 and confirmed.get_json()["confirmed"]
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 200
    etag = confirmed.headers["ETag"]

    patched = client.patch(url, json={"initials": "SQ"}, headers={"If-Match": etag})
    assert patched.status_code == 200
    assert client.patch(url, json={"initials": "NO"}, headers={"If-Match": etag}).status_code == 412

    assert client.post("/api/reset-password", json={"email": data["email"]}).status_code == 204
    client.application.extensions["deferred"].join()  # handled after the answer
    reset = {"token": token_from(outbox, "reset_password"), "password": "Reset1234"}
    assert client.post("/api/reset-password/confirm", json=reset).status_code == 204
    assert client.post("/api/reset-password/confirm", json=reset).status_code == 400
    assert client.get(url).status_code == 401  # the reset ended the session

    session = client.post(
        "/api/auth/login", json={"email": data["email"], "password": "Reset1234"}
    ).get_json()
    act_as(client, {"Authorization": f"Bearer {session['access_token']}"})
    refreshed = client.post("/api/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert refreshed.status_code == 200
    assert (
        client.post("/api/auth/refresh", json={"refresh_token": session["refresh_token"]}).status_code == 401
    )
    assert client.get(url).status_code == 401  # the reuse ended the session
    act_as(client, login(client, data["email"], "Reset1234"))
    assert client.get("/api/auth/me").get_json()["email"] == data["email"].strip().lower()
    assert [row["kind"] for row in client.get(f"{url}/activity").get_json()["items"]] == [
        "login",
        "refresh_reused",
        "refresh",
        "login",
        "login",
    ]

    admin = make_admin(app, faker)
    query = {"email": data["email"], "confirmed": "true"}
    listed = client.get("/api/users", query_string=query, headers=admin)
    assert [u["id"] for u in listed.get_json()["items"]] == [created.get_json()["id"]]

    assert client.delete(url, headers={"If-Match": patched.headers["ETag"]}).status_code == 412
    assert client.delete(url).status_code == 204
    assert client.get(url).status_code == 401
    assert client.get(url, headers=admin).status_code == 404
    assert client.get("/health/ready").get_json() == {
        "status": "ok",
        "checks": {"database": "ok", "schema": "ok", "cache": "ok"},
    }


def test_readiness_fails_when_the_database_is_unreachable():
    app = create_app(
        {**TEST_ENV, "DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1"}
    )
    response = app.test_client().get("/health/ready")
    assert response.status_code == 503
    assert response.get_json()["checks"] == {"database": "unavailable", "cache": "ok"}


def test_readiness_reports_a_dead_cache_without_failing():
    dead = create_app({**TEST_ENV, "CACHE_URL": "redis://127.0.0.1:1/0", "CACHE_SOCKET_TIMEOUT": "0.2"})
    response = dead.test_client().get("/health/ready")
    assert response.status_code == 200  # reads are served from the database meanwhile
    assert response.get_json()["checks"]["cache"] == "degraded"


@pytest.mark.parametrize("field", ["email", "initials", "password"])
@pytest.mark.parametrize("bad", ["nul\u0000byte", "lone\ud800surrogate", "bell\u0007"])
def test_control_characters_are_refused_not_crashed_on(app, faker, field, bad):
    client = app.test_client()
    data = factories.registration(faker, **{field: bad})
    response = client.post("/api/users", data=json.dumps(data), content_type="application/json")
    assert response.status_code == 422
    assert field in response.get_json()["errors"]


def test_odd_arguments_get_answers_not_errors(app, faker):
    client = app.test_client()
    act_as(client, make_admin(app, faker))
    body = json.dumps({"email": "a\u0000@example.com"})
    assert client.post("/api/reset-password", data=body, content_type="application/json").status_code == 422
    assert client.get("/api/users", query_string={"email": "x\u0000"}).status_code == 422
    assert client.get("/api/users?page=4611686018427387904").status_code == 422
    assert client.get("/api/users?page=100000&page_size=100").status_code == 200
    token = json.dumps({"token": "\ud800", "password": "Valid1234"})
    assert (
        client.post("/api/reset-password/confirm", data=token, content_type="application/json").status_code
        == 422
    )
