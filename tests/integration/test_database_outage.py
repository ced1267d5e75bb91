"""The database out of reach: every request that needs it answers a 503 problem with Retry-After,
nothing half-written, and the service answers again as soon as the database does. On
PostgreSQL, reached through a TCP relay the test cuts (tests/support/rabbitmq.TcpProxy, which
forwards any TCP service)."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from app.factory import create_app
from tests import factories
from tests.api.conftest import act_as, login
from tests.integration.backends import migrated, postgres_url
from tests.settings import TEST_ENV
from tests.support.rabbitmq import TcpProxy

pytestmark = pytest.mark.postgres


@pytest.fixture
def database(postgres_schema) -> Iterator[tuple[str, TcpProxy]]:
    """The schema's URL, and a relay to it."""
    url = migrated(postgres_url(postgres_schema()))
    relay = TcpProxy(url)
    yield url, relay
    relay.close()


def cut(relay: TcpProxy) -> None:
    relay.refusing = True
    relay.cut()


def assert_unavailable(response) -> None:
    assert response.status_code == 503, (response.status_code, response.get_data(as_text=True)[:300])
    assert response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"] == "5"
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert (body["status"], body["title"]) == (503, "Service Unavailable")
    assert "Traceback" not in response.get_data(as_text=True)


@pytest.mark.parametrize("cache", ["memory", "none"])
def test_every_endpoint_that_needs_the_database_answers_503_while_it_is_away(database, faker, cache):
    url, relay = database
    app = create_app({**TEST_ENV, "DATABASE_URL": relay.url, "CACHE_URL": cache})
    client = app.test_client()
    data = factories.registration(faker)
    user = client.post("/api/users", json=data).get_json()
    headers = login(client, data["email"], data["password"])
    act_as(client, headers)
    states = app.extensions["container"].caching.states()
    states.delete(UUID(user["id"]))  # no session state: the check must go to the database

    cut(relay)
    newcomer = factories.registration(faker)
    assert_unavailable(client.post("/api/users", json=newcomer))
    assert_unavailable(
        client.post("/api/auth/login", json={"email": data["email"], "password": data["password"]})
    )
    assert_unavailable(client.get(f"/api/users/{user['id']}"))  # the hot path hands it on
    assert_unavailable(client.patch(f"/api/users/{user['id']}", json={"initials": "NW"}))
    assert_unavailable(client.post("/api/auth/logout"))
    assert_unavailable(client.get(f"/api/users/{user['id']}/activity"))
    assert client.get("/health/ready").status_code == 503

    relay.refusing = False
    assert (
        client.get(f"/api/users/{user['id']}").get_json()["initials"] == user["initials"]
    )  # nothing half-written
    assert client.post("/api/users", json=newcomer).status_code == 201
    direct = create_engine(url, poolclass=NullPool)
    try:
        with direct.connect() as connection:
            emails = connection.execute(text("SELECT email FROM users")).scalars().all()
    finally:
        direct.dispose()
    assert sorted(emails) == sorted([user["email"], newcomer["email"].lower()])


def test_a_database_bug_is_a_500_not_an_outage(tmp_path, faker):
    """SQLite says "no such column" with the same exception class as "database is locked": only
    the second is an outage (503); the first is a bug and must show as one."""
    url = f"sqlite:///{tmp_path / 'users.db'}"
    app = create_app({**TEST_ENV, "DATABASE_URL": url, "CACHE_URL": "none"})
    client = app.test_client()
    data = factories.registration(faker)
    user = client.post("/api/users", json=data).get_json()
    act_as(client, login(client, data["email"], data["password"]))
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE users RENAME COLUMN initials TO initials_gone"))
    finally:
        engine.dispose()
    broken = client.get(f"/api/users/{user['id']}")
    assert broken.status_code == 500
    assert "Retry-After" not in broken.headers
