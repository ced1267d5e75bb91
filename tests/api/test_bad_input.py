"""Bad input of every kind gets a clear 4xx problem and changes nothing (invariant I7)."""

from __future__ import annotations

import io

import pytest

from adapters.security import Argon2PasswordHasher
from app import config
from app.factory import create_app
from domain.errors import Busy
from tests import factories
from tests.settings import TEST_ENV

PROBLEM = "application/problem+json"


def snapshot(client, admin) -> list:
    return client.get("/api/users?page_size=100", headers=admin).get_json()["items"]


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


@pytest.mark.parametrize(
    ("request_kwargs", "status", "field"),
    [
        ({"data": '{"email": "a@b.c",', "content_type": "application/json"}, 400, None),
        ({"json": {"email": 42, "initials": "AB", "password": "Secret123"}}, 422, "email"),
        ({"json": {"email": "a@example.com", "initials": ["A"], "password": "Secret123"}}, 422, "initials"),
        (
            {"json": {"email": "a@example.com", "initials": "AB", "password": "Secret123", "admin": True}},
            422,
            "admin",
        ),
        ({"json": {"email": "a@example.com", "initials": "AB"}}, 422, "password"),
        ({"json": {"email": "a@example.com", "initials": "1AB", "password": "Secret123"}}, 422, "initials"),
        ({"json": {"email": "a@example.com", "initials": "AB", "password": "secret"}}, 422, "password"),
        ({"json": ["not", "an", "object"]}, 422, None),
        ({"data": "email=a@example.com", "content_type": "application/x-www-form-urlencoded"}, 415, None),
        ({"data": "<user/>", "content_type": "application/xml"}, 415, None),
        ({"json": {"email": "a@example.com", "initials": "A" * 5000, "password": "Secret123"}}, 413, None),
    ],
    ids=[
        "malformed-json",
        "wrong-type",
        "wrong-type-list",
        "unknown-field",
        "missing-field",
        "rule-initials",
        "rule-password",
        "not-an-object",
        "form-body",
        "xml-body",
        "oversize",
    ],
)
def test_registration_refuses_bad_input(client, admin, registered, request_kwargs, status, field):
    before = snapshot(client, admin)
    body = assert_problem(client.post("/api/users", **request_kwargs), status)
    if field:
        assert field in body["errors"]
    assert snapshot(client, admin) == before


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {"json": {"initials": 7}},
        {"json": {"initials": "OK", "roles": ["admin"]}},
        {"json": {"email": "new@example.com"}},
        {"json": {"email": "new@example.com", "old_password": "Wrong1234"}},
        {"data": "not json", "content_type": "application/json"},
        {"data": "initials=OK", "content_type": "text/plain"},
    ],
    ids=["wrong-type", "unknown-field", "no-old-password", "wrong-old-password", "malformed", "text-body"],
)
def test_patch_refuses_bad_input_and_changes_nothing(client, registered, request_kwargs):
    response = client.patch(registered["url"], **request_kwargs)
    assert 400 <= response.status_code < 500 and response.mimetype == PROBLEM
    after = client.get(registered["url"])
    assert after.get_json() == registered["json"] and after.headers["ETag"] == registered["etag"]


@pytest.mark.parametrize("path", ["/api/users/not-a-uuid", "/api/users/1234", "/api/users/%00"])
def test_an_invalid_uuid_is_not_found(client, path):
    assert_problem(client.get(path), 404)


def test_unknown_query_arguments_and_bad_pages_are_refused(client):
    assert "page_size" in assert_problem(client.get("/api/users?page_size=101"), 422)["errors"]
    assert "page" in assert_problem(client.get("/api/users?page=0"), 422)["errors"]
    assert "confirmed" in assert_problem(client.get("/api/users?confirmed=maybe"), 422)["errors"]
    assert "sort" in assert_problem(client.get("/api/users?sort=email"), 422)["errors"]


def test_wrong_method_lists_the_allowed_ones(client):
    response = client.put("/api/users")
    assert_problem(response, 405)
    assert "POST" in response.headers["Allow"]


def test_duplicate_email_is_a_conflict(client, registered):
    data = {"email": registered["json"]["email"].upper(), "initials": "DU", "password": "Secret123"}
    assert_problem(client.post("/api/users", json=data), 409)


def test_a_server_error_reveals_nothing(app, client, monkeypatch):
    app.config["PROPAGATE_EXCEPTIONS"] = False

    def explode(message):
        raise RuntimeError("connection string postgres://secret@db")

    monkeypatch.setattr(app.extensions["container"].bus(), "handle", explode)
    response = client.post(
        "/api/users", json={"email": "a@example.com", "initials": "AB", "password": "Secret123"}
    )
    body = assert_problem(response, 500)
    assert "secret" not in response.get_data(as_text=True) and "RuntimeError" not in body["detail"]


DEEP = b"[" * 1000 + b"]" * 1000


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (DEEP, "deeper than 32 levels"),
        (b'{"email": ' + b"[" * 33 + b"]" * 33 + b"}", "deeper than 32 levels"),
        (b'{"email": ' + b"9" * 1000 + b"}", "longer than 40 characters"),
        (b'{"email": 1.' + b"5" * 60 + b"}", "longer than 40 characters"),
        (b'{"email": NaN}', "not a JSON number"),
        (b'{"email": -Infinity}', "not a JSON number"),
        (b'{"email": 1e999}', "not a JSON number"),
    ],
)
def test_json_too_deep_or_with_numbers_too_long_is_400_before_any_view(client, admin, body, detail):
    before = snapshot(client, admin)
    for method, path in (
        ("post", "/api/users"),
        ("post", "/api/auth/login"),
        ("post", "/api/reset-password"),
    ):
        response = getattr(client, method)(path, data=body, content_type="application/json")
        assert detail in assert_problem(response, 400)["detail"]
    assert snapshot(client, admin) == before


def test_the_json_limits_speak_the_clients_language(client):
    response = client.post(
        "/api/users", data=DEEP, content_type="application/json", headers={"Accept-Language": "uk"}
    )
    assert (
        assert_problem(response, 400)["detail"]
        == "Тіло JSON вкладає масиви й об'єкти глибше ніж на 32 рівні."
    )


def test_json_within_the_limits_is_read(client):
    nested = {"email": "a@example.com", "initials": "AB", "password": "Secret123"}
    assert client.post("/api/users", json=nested).status_code == 201


def chunked(client, body: bytes, coding: str = "chunked"):
    """A POST whose body has no Content-Length, as a server that decodes chunked bodies hands it
    over (gunicorn sets wsgi.input_terminated)."""
    return client.post(
        "/api/users",
        input_stream=io.BytesIO(body),
        headers={"Content-Type": "application/json", "Transfer-Encoding": coding},
        environ_overrides={"wsgi.input_terminated": True},
    )


@pytest.mark.parametrize("coding", ["chunked", "Chunked", "CHUNKED"])  # codings ignore case
def test_a_chunked_body_over_the_limit_is_413_not_a_body_cut_short(client, app, coding):
    limit = app.config["MAX_CONTENT_LENGTH"]
    padded = b'{"email": "a@example.com", "initials": "AB", "password": "Secret123", "x": "'
    assert_problem(chunked(client, padded + b"y" * limit + b'"}', coding), 413)
    assert_problem(chunked(client, DEEP, coding), 400)
    small = b'{"email": "chunked@example.com", "initials": "AB", "password": "Secret123"}'
    assert chunked(client, small, coding).status_code == 201


def test_headers_too_long_to_be_real_are_not_parsed(client, registered):
    genuine = registered["headers"]["Authorization"]
    assert client.get(registered["url"], headers={"Authorization": genuine + " " * 100}).status_code == 200
    padded = {"Authorization": genuine + " " * 5000}  # a genuine token, in a header too long to read
    assert_problem(client.get(registered["url"], headers=padded), 401)
    long_languages = ",".join(["vi;q=0.9"] + ["xx"] * 200)
    for _ in range(2):  # the hot path, then the view
        response = client.get(registered["url"], headers={"Accept-Language": long_languages})
        assert (response.status_code, response.headers["Content-Language"]) == (200, "en")
    assert (
        client.get(registered["url"], headers={"Accept-Language": "vi"}).headers["Content-Language"] == "vi"
    )


def test_registrations_are_limited_per_client_and_in_all_before_any_hash(faker):
    app = create_app({**TEST_ENV, "REGISTRATIONS_PER_CLIENT": "3/hour", "REGISTRATIONS": "5/minute"})
    client = app.test_client()
    hashes = []
    hasher = app.extensions["container"].hasher()
    original = hasher.hash
    hasher.hash = lambda password: hashes.append(1) or original(password)

    def register(address: str):
        return client.post(
            "/api/users", json=factories.registration(faker), environ_overrides={"REMOTE_ADDR": address}
        )

    assert [register("10.0.0.1").status_code for _ in range(3)] == [201] * 3
    refused = register("10.0.0.1")
    assert_problem(refused, 429)
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    assert [register("10.0.0.2").status_code for _ in range(2)] == [201] * 2  # 5 in all now
    assert_problem(register("10.0.0.3"), 429)  # a new address, but the total is reached
    assert len(hashes) == 5  # the refused ones cost no hash


def test_a_registration_rate_that_is_not_one_is_named():
    with pytest.raises(config.ConfigError) as error:
        config.load({**TEST_ENV, "REGISTRATIONS": "lots"})
    assert "REGISTRATIONS='lots': a rate such as 10/hour" in str(error.value)


def test_password_hashing_takes_turns_and_a_request_that_waits_too_long_is_503(faker):
    hasher = Argon2PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, concurrency=2, wait=0.1)
    assert hasher.verify(hasher.hash("Secret123"), "Secret123")
    hasher._turns.acquire()  # another thread's hash under way...
    assert hasher.verify(hasher.hash("Secret123"), "Secret123")  # ...a second turn is free
    hasher._turns.acquire()  # both taken
    with pytest.raises(Busy):
        hasher.hash("Secret123")
    with pytest.raises(Busy):
        hasher.verify("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g", "Secret123")
    hasher._turns.release()
    assert hasher.verify(hasher.hash("Other1234"), "Other1234")  # a turn is free again

    app = create_app(TEST_ENV)
    shared = app.extensions["container"].hasher()
    shared._turns.acquire()  # ARGON2_CONCURRENCY=1 (the default): the one turn is taken
    shared._wait = 0.05
    busy = app.test_client().post("/api/users", json=factories.registration(faker))
    assert_problem(busy, 503)
    assert busy.headers["Retry-After"] == "2"


def test_a_path_with_double_slashes_is_not_redirected_to_the_host_header(client):
    for path in ("/api//users", "/api/auth//me"):
        response = client.get(path, headers={"Host": "evil.example"})
        assert response.status_code == 404
        assert "evil.example" not in response.headers.get("Location", "")
