"""GraphQL reads through the service's read cache, on SQLite with a shared cache (Redis, or the
local store): `user(id)` on a cache hit sends no SQL statement, and two app instances on one
database and one cache (two workers) see each other's writes at once, whichever API made them."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis
from flask import Flask
from sqlalchemy import event

from adapters.caching import keys
from tests.api.conftest import act_as, login
from tests.integration.backends import app_on_sql
from tests.support.accounts import register_over_http
from tests.support.redis import REDIS_URL, delete_prefixed, redis_client

PATH = "/api/graphql"


@pytest.fixture(params=["redis", "local"])
def cache_env(request, tmp_path) -> Iterator[dict[str, str]]:
    """The settings of a cache both workers share."""
    if request.param == "local":
        yield {"CACHE_URL": f"local://{tmp_path / 'cache.db'}"}
        return
    client = redis_client()
    prefix = f"test:graphql-caches:{secrets.token_hex(6)}:"
    try:
        yield {"CACHE_URL": REDIS_URL, "CACHE_PREFIX": prefix}
    finally:
        delete_prefixed(client, prefix)
        client.close()


@pytest.fixture
def workers(request, tmp_path, cache_env) -> Iterator[tuple[Flask, Flask]]:
    """Two apps on one SQLite file and one cache, as two worker processes would be."""
    with (
        app_on_sql(request, tmp_path, "sqlite", **cache_env) as first,
        app_on_sql(request, tmp_path, "sqlite", **cache_env) as second,
    ):
        yield first, second


@pytest.fixture
def account(workers, faker) -> dict:
    """A user registered on the first worker, and its Authorization headers (both accept them)."""
    app = workers[0]
    client = app.test_client()
    registered = register_over_http(client, app.extensions["container"].mailer().outbox, faker)
    return {**registered, "headers": login(client, registered["email"], registered["password"])}


def client_of(app: Flask, account: dict):
    client = app.test_client()
    act_as(client, account["headers"])
    return client


def read(client, user_id: str, method: str = "POST", **kwargs) -> dict:
    query = f'{{ user(id: "{user_id}") {{ initials etag }} }}'
    if method == "GET":
        response = client.get(PATH, query_string={"query": query}, **kwargs)
    else:
        response = client.post(PATH, json={"query": query}, **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    body = response.get_json()
    assert "errors" not in body, body
    return body["data"]["user"]


@contextmanager
def statements(app: Flask) -> Iterator[list[str]]:
    """The SQL statements the app's engine sends while the block runs."""
    engine = app.extensions["container"].storage.engine()
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_a_cache_hit_sends_no_sql_statement(workers, account):
    app = workers[0]
    client = client_of(app, account)
    user_id = account["json"]["id"]
    read(client, user_id)  # fills the entry if the registration did not
    with statements(app) as seen:
        assert read(client, user_id)["etag"] == account["etag"]
        assert read(client, user_id, "GET")["initials"] == account["json"]["initials"]
    assert seen == []
    app.extensions["container"].caching.cache().delete(keys.user(user_id))
    with statements(app) as seen:
        assert read(client, user_id)["etag"] == account["etag"]
    assert any("FROM users" in statement for statement in seen), seen  # a miss reads the database
    with statements(app) as seen:
        read(client, user_id)
    assert seen == []  # and refills the entry


@pytest.mark.parametrize("cache_env", ["redis"], indirect=True)  # the local store reads in-process
def test_a_hit_is_one_redis_round_trip_as_on_the_rest_hot_path(workers, account, monkeypatch):
    """The session check reads the user's entry along (app.http.hot_path.user_read)."""
    client = client_of(workers[0], account)
    user_id = account["json"]["id"]
    read(client, user_id)
    read(client, user_id)  # the scripts are loaded
    sent: list[bytes] = []
    original = redis.connection.Connection.send_packed_command

    def counting(connection, command, *args, **kwargs):
        sent.append(command)
        return original(connection, command, *args, **kwargs)

    monkeypatch.setattr(redis.connection.Connection, "send_packed_command", counting)
    assert read(client, user_id)["etag"] == account["etag"]
    packed = [b"".join(c) if isinstance(c, list | tuple) else bytes(c) for c in sent]
    # Another test's SCRIPT FLUSH makes the server ask for a script again: not a round trip here.
    assert len(sent) - 2 * sum(b"SCRIPT" in command for command in packed) == 1


def test_a_graphql_write_on_one_worker_is_seen_by_the_other_at_once(workers, account):
    first, second = (client_of(app, account) for app in workers)
    user_id, url = account["json"]["id"], account["url"]
    assert read(second, user_id)["etag"] == account["etag"]  # the second worker has read it: cached
    assert second.get(url).headers["ETag"] == account["etag"]
    old_representation = second.get(
        PATH, query_string={"query": f'{{ user(id: "{user_id}") {{ initials }} }}'}
    )

    mutation = f'mutation {{ updateUser(id: "{user_id}", input: {{initials: "GA"}}) {{ initials etag }} }}'
    changed = first.post(PATH, json={"query": mutation}).get_json()["data"]["updateUser"]
    assert changed["initials"] == "GA" and changed["etag"] != account["etag"]

    rest = second.get(url)
    assert (rest.get_json()["initials"], rest.headers["ETag"]) == ("GA", changed["etag"])
    assert read(second, user_id) == changed
    assert read(second, user_id, "GET") == changed
    revalidated = second.get(
        PATH,
        query_string={"query": f'{{ user(id: "{user_id}") {{ initials }} }}'},
        headers={"If-None-Match": old_representation.headers["ETag"]},
    )
    assert revalidated.status_code == 200 and revalidated.get_json()["data"]["user"]["initials"] == "GA"


def test_a_rest_write_on_one_worker_is_seen_in_graphql_on_the_other_at_once(workers, account):
    first, second = (client_of(app, account) for app in workers)
    user_id = account["json"]["id"]
    assert read(first, user_id)["etag"] == account["etag"]  # cached where it will be read again
    assert read(first, user_id, "GET")["etag"] == account["etag"]

    patched = second.patch(account["url"], json={"initials": "RB"}, headers={"If-Match": account["etag"]})
    assert patched.status_code == 200, patched.get_json()

    expected = {"initials": "RB", "etag": patched.headers["ETag"]}
    assert read(first, user_id) == expected
    assert read(first, user_id, "GET") == expected
