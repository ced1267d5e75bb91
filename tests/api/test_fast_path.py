"""GET /api/users/{id} through the hot path: the same response as the Flask view gives; a hit from
one Redis round trip, with no database, serializer or Flask work; /metrics counts it."""

from __future__ import annotations

import secrets

import pytest
import redis
from werkzeug.test import Client

from adapters.caching import keys
from app.factory import create_app
from tests.settings import TEST_ENV
from tests.support.redis import REDIS_URL, delete_prefixed, redis_client


def comparable(response) -> tuple:
    """All but the request's id (a new one per request when the client sends none)."""
    headers = sorted((name, value) for name, value in response.headers.items() if name != "X-Request-ID")
    assert response.headers.get("X-Request-ID")
    return response.status_code, headers, response.data


@pytest.fixture
def flask_requests(app) -> list[str]:
    """Paths of the requests that reached Flask (the fast path answers the others); ask for it
    before any fixture that sends a request."""
    seen: list[str] = []

    @app.before_request
    def count() -> None:
        from flask import request

        seen.append(request.path)

    return seen


class ViewClient:
    """A client of the Flask app behind the hot path, sending the same credentials."""

    def __init__(self, app, client) -> None:
        self._client = Client(app.wsgi_app.app, app.response_class)
        self._authorization = client.environ_base.get("HTTP_AUTHORIZATION", "")

    def open(self, url: str, method: str = "GET", headers: dict | None = None):
        return self._client.open(
            url, method=method, headers={"Authorization": self._authorization, **(headers or {})}
        )

    def get(self, url: str, **kwargs):
        return self.open(url, **kwargs)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Accept-Language": "uk, en;q=0.5"}, {"Accept-Language": "vi-VN"}, {"If-None-Match": "*"}],
)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_hit_answers_exactly_as_the_view_does(app, flask_requests, client, registered, method, headers):
    url = registered["url"]
    flask_requests.clear()
    from_view = ViewClient(app, client).open(url, method=method, headers=headers)
    assert flask_requests == [url.removeprefix("http://localhost")]
    from_cache = client.open(url, method=method, headers=headers)
    assert len(flask_requests) == 1  # the hot path answered
    assert comparable(from_cache) == comparable(from_view)
    assert from_view.status_code == (304 if "If-None-Match" in headers else 200)


@pytest.mark.parametrize("headers", [{}, {"Accept-Language": "uk"}])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_me_answers_from_the_hot_path_exactly_as_the_view_does(
    app, flask_requests, client, registered, method, headers
):
    flask_requests.clear()
    from_view = ViewClient(app, client).open("/api/auth/me", method=method, headers=headers)
    assert flask_requests == ["/api/auth/me"]
    from_hot_path = client.open("/api/auth/me", method=method, headers=headers)
    assert len(flask_requests) == 1
    assert comparable(from_hot_path) == comparable(from_view)
    assert from_view.status_code == 200
    assert client.get("/api/auth/me", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_a_failed_check_is_not_tried_again_by_the_view(app, flask_requests, client, registered, monkeypatch):
    states, calls = app.extensions["container"].caching.states(), []

    def failing(*args, **kwargs):
        calls.append(args)
        raise RuntimeError("the session state is gone")

    monkeypatch.setattr(states, "read", failing)
    flask_requests.clear()
    response = client.get("/api/auth/me")
    assert flask_requests == ["/api/auth/me"]  # the view answers, with the hot path's outcome
    assert response.status_code == 500 and response.mimetype == "application/problem+json"
    assert len(calls) == 1  # not a second wait for what already failed


def test_me_is_serialised_once_per_session_state(app, client, registered, admin, monkeypatch):
    first = client.get("/api/auth/me").get_json()
    monkeypatch.setattr("app.api.schemas.MeSchema.dump", lambda *args, **kwargs: 1 / 0)
    assert client.get("/api/auth/me").get_json() == first  # the same state: the same bytes, no dump
    monkeypatch.undo()
    user_id = registered["json"]["id"]
    assert (
        client.put(
            f"/api/users/{user_id}/roles", json={"roles": ["user", "admin"]}, headers=admin
        ).status_code
        == 200
    )
    assert client.get("/api/auth/me").get_json()["roles"] == ["admin", "user"]  # a new state, at once


def test_a_miss_is_loaded_and_stored_by_the_hot_path(app, flask_requests, client, registered):
    url, key = registered["url"], keys.user(registered["json"]["id"])
    cache = app.extensions["container"].caching.cache()
    cache.delete(key)
    flask_requests.clear()
    from_miss = client.get(url)
    assert flask_requests == [] and cache.get(key) is not None
    assert comparable(client.get(url)) == comparable(from_miss)
    assert comparable(ViewClient(app, client).get(url)) == comparable(from_miss)


def test_what_the_hot_path_cannot_answer_gets_the_views_problem(app, flask_requests, client, registered):
    """A user not found, and a failure of the cache and the database together."""
    flask_requests.clear()
    missing = client.get("/api/users/00000000-0000-0000-0000-000000000000", headers=registered["headers"])
    assert missing.status_code == 403  # not theirs: the view's answer
    assert flask_requests == ["/api/users/00000000-0000-0000-0000-000000000000"]
    container = app.extensions["container"]

    def failing(*args, **kwargs):
        raise RuntimeError("the database is gone")

    container.user_entries().read = failing  # type: ignore[method-assign]
    flask_requests.clear()
    response = client.get(registered["url"])
    assert flask_requests == [registered["url"].removeprefix("http://localhost")]
    assert response.status_code == 200 and response.get_json()["id"] == registered["json"]["id"]


def test_the_hot_path_echoes_the_request_id(client, registered):
    client.get(registered["url"])  # stored
    assert (
        client.get(registered["url"], headers={"X-Request-ID": "req-42"}).headers["X-Request-ID"] == "req-42"
    )
    trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert client.get(registered["url"], headers={"traceparent": trace}).headers["X-Request-ID"] == (
        "4bf92f3577b34da6a3ce929d0e0e4736"
    )
    missing = "/api/users/00000000-0000-0000-0000-000000000000"  # passed on: the Flask app echoes it
    assert client.get(missing, headers={"X-Request-ID": "req-43"}).headers["X-Request-ID"] == "req-43"


def test_a_matching_if_none_match_gets_304_from_the_fast_path(flask_requests, client, registered):
    flask_requests.clear()
    client.get(registered["url"])
    for condition in (registered["etag"], f"W/{registered['etag']}", f'"other", {registered["etag"]}'):
        response = client.get(registered["url"], headers={"If-None-Match": condition})
        assert response.status_code == 304 and response.data == b""
        assert response.headers["ETag"] == registered["etag"]
        assert response.headers["Cache-Control"] == "private, no-cache"
    assert client.get(registered["url"], headers={"If-None-Match": '"other"'}).status_code == 200
    assert flask_requests == []  # the miss too


def test_a_hit_needs_no_database_and_no_serializer(app, client, registered, monkeypatch):
    client.get(registered["url"])
    container = app.extensions["container"]

    def unusable(*args, **kwargs):
        raise AssertionError("a cache hit must not reach this")

    container.storage.read_uow.override(unusable)
    monkeypatch.setattr("app.http.user_representation.RepresentationCodec.encode", unusable)
    monkeypatch.setattr("app.http.user_representation.RepresentationCodec.decode", unusable)
    monkeypatch.setattr("json.dumps", unusable)
    try:
        assert client.get(registered["url"]).get_json()["id"] == registered["json"]["id"]
        assert client.get(registered["url"], headers={"If-None-Match": registered["etag"]}).status_code == 304
    finally:
        container.storage.read_uow.reset_override()


def test_writes_are_seen_at_once_and_a_deleted_user_is_gone(client, registered):
    url = registered["url"]
    client.get(url)
    patched = client.patch(url, json={"initials": "ZZ"})
    assert client.get(url).get_json()["initials"] == "ZZ"
    assert client.get(url, headers={"If-None-Match": patched.headers["ETag"]}).status_code == 304
    assert client.get(url, headers={"If-None-Match": registered["etag"]}).status_code == 200
    assert client.delete(url).status_code == 204
    assert client.get(url).status_code == 401  # the session ended with the account


def test_the_hit_is_only_for_the_user_and_admins(app, flask_requests, client, registered, admin, faker):
    url = registered["url"]
    assert client.get(url).status_code == 200  # stored
    flask_requests.clear()
    assert client.get(url, headers=admin).get_json()["id"] == registered["json"]["id"]
    assert flask_requests == []  # an admin's read is a hit as well
    anonymous = client.get(url, headers={"Authorization": ""})
    forged = client.get(url, headers={"Authorization": registered["headers"]["Authorization"] + "x"})
    other = client.get(url, headers=make_other_user(app, client, faker))
    assert (anonymous.status_code, forged.status_code, other.status_code) == (401, 401, 403)
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert other.headers["Cache-Control"] == "no-store" and "ETag" not in other.headers
    assert (
        client.get(url, headers={"If-None-Match": registered["etag"], "Authorization": ""}).status_code == 401
    )
    assert client.post("/api/auth/logout").status_code == 204
    assert client.get(url).status_code == 401  # a hit, but the session is over


def make_other_user(app, client, faker) -> dict[str, str]:
    from tests import factories
    from tests.api.conftest import login

    data = factories.registration(faker)
    assert client.post("/api/users", json=data).status_code == 201
    return login(client, data["email"], data["password"])


def test_other_methods_and_paths_go_to_flask(flask_requests, client, registered):
    flask_requests.clear()
    client.get(registered["url"])
    upper = registered["url"].upper().replace("/API/USERS", "/api/users")
    assert client.get(upper).get_json()["id"] == registered["json"]["id"]  # any case: a hit too
    assert client.get(registered["url"] + "/").status_code == 404
    assert client.post(registered["url"]).status_code == 405
    assert len(flask_requests) == 2  # the GETs of the user are the hot path's, miss and hit


def test_the_collection_is_invalidated_by_registration(client, admin, faker):
    from tests import factories

    first = client.get("/api/users", headers=admin).get_json()
    assert first["total"] == 1  # the admin
    client.post("/api/users", json=factories.registration(faker))
    assert client.get("/api/users", headers=admin).get_json()["total"] == 2


def test_metrics_count_hits_misses_and_invalidations(client, registered):
    def sample(name: str, label: str) -> float:
        text = client.get("/metrics").get_data(as_text=True)
        for line in text.splitlines():
            if line.startswith(f"{name}{{{label}}} "):
                return float(line.split()[-1])
        return 0.0

    hits = sample("cache_hits_total", 'policy="user_by_id"')
    misses = sample("cache_misses_total", 'policy="user_by_id"')
    updated = sample("cache_invalidations_total", 'reason="user_updated"')
    client.get(registered["url"])
    client.get(registered["url"])
    client.patch(registered["url"], json={"initials": "QQ"})
    assert sample("cache_misses_total", 'policy="user_by_id"') - misses == 1
    assert sample("cache_hits_total", 'policy="user_by_id"') - hits == 1
    assert sample("cache_invalidations_total", 'reason="user_updated"') - updated == 1
    assert client.get("/metrics").headers["Cache-Control"] == "no-store"


class TestOnRedis:
    @pytest.fixture
    def app(self):
        client = redis_client()
        prefix = f"test:fast:{secrets.token_hex(6)}:"
        yield create_app({**TEST_ENV, "CACHE_URL": REDIS_URL, "CACHE_PREFIX": prefix})
        delete_prefixed(client, prefix)
        client.close()

    def test_a_hit_and_a_304_each_make_one_round_trip(self, app, client, registered, monkeypatch):
        """The session check (UserState) reads the entry along, in one script."""
        client.get(registered["url"])
        client.get(registered["url"])  # loads the Lua script
        sent: list[bytes] = []
        original = redis.connection.Connection.send_packed_command

        def counting(connection, command, *args, **kwargs):
            sent.append(command)
            return original(connection, command, *args, **kwargs)

        def round_trips() -> int:
            """Sends but the script loads: another test's SCRIPT FLUSH makes the server ask for
            a script again (NOSCRIPT, then SCRIPT LOAD and the EVALSHA once more)."""
            packed = [b"".join(c) if isinstance(c, list | tuple) else bytes(c) for c in sent]
            return len(sent) - 2 * sum(b"SCRIPT" in command for command in packed)

        monkeypatch.setattr(redis.connection.Connection, "send_packed_command", counting)
        assert client.get(registered["url"]).status_code == 200
        assert round_trips() == 1
        assert client.get(registered["url"], headers={"If-None-Match": registered["etag"]}).status_code == 304
        assert round_trips() == 2
        cache = app.extensions["container"].caching.cache()
        assert cache.get(keys.user(registered["json"]["id"])) is not None
        cache.delete(keys.user(registered["json"]["id"]))
        sent.clear()
        assert client.get(registered["url"]).status_code == 200  # a miss, loaded and stored
        # The session check with the entry's read; the lease; the look again; the tag
        # versions; the store with the lease's release.
        assert round_trips() == 5


@pytest.mark.parametrize("written_by_another_version", [b"r0/1:\x00\x00old layout", b'{"not": "a user"}'])
def test_an_entry_in_another_format_is_replaced_not_served(
    app, flask_requests, client, registered, written_by_another_version
):
    url, key = registered["url"], keys.user(registered["json"]["id"])
    expected = client.get(url)
    cache = app.extensions["container"].caching.cache()
    versions = cache.tag_versions(key, keys.user_tags(registered["json"]["id"]))
    assert cache.set(key, written_by_another_version, ttl=600, versions=versions)
    flask_requests.clear()
    assert comparable(client.get(url)) == comparable(expected)  # through Flask, which replaced it
    assert comparable(client.get(url)) == comparable(expected)  # and a hit again
    assert len(flask_requests) == 1


class TestWithoutCache:
    """CACHE_URL=none: the hot path still answers, from the database on every read."""

    @pytest.fixture
    def app(self):
        return create_app({**TEST_ENV, "CACHE_URL": "none"})

    @pytest.mark.parametrize("headers", [{}, {"If-None-Match": "*"}])
    def test_a_read_answers_exactly_as_the_view_does(self, app, flask_requests, client, registered, headers):
        url = registered["url"]
        flask_requests.clear()
        from_view = ViewClient(app, client).get(url, headers=headers)
        from_hot_path = client.get(url, headers=headers)
        assert len(flask_requests) == 1  # the view's request only
        assert comparable(from_hot_path) == comparable(from_view)

    def test_every_read_loads_so_writes_are_seen_at_once(
        self, app, flask_requests, client, registered, admin
    ):
        url = registered["url"]
        assert client.patch(url, json={"initials": "ZZ"}).status_code == 200
        flask_requests.clear()
        assert client.get(url).get_json()["initials"] == "ZZ"
        assert client.get(url, headers=admin).get_json()["initials"] == "ZZ"
        assert flask_requests == []
        assert client.delete(url).status_code == 204
        assert client.get(url, headers=admin).status_code == 404  # passed on: the view's problem
