"""The lookup of a user by email through the read cache, where the service reads by email outside
a write: a password reset request (an unknown email's cached "not found" answers it with no
database work; registering the email ends that answer) and the admin list's exact email filter
(answered from the same entry, and correct at once after every kind of write). In memory, and on
PostgreSQL with Redis."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest
from flask import Flask
from sqlalchemy import event

from adapters.caching import keys, read_through
from adapters.memory.unit_of_work import InMemoryUnitOfWork
from app.factory import create_app
from domain.users.queries import PageRequest, UserFilter
from tests import factories
from tests.api.conftest import login, make_admin, token_from
from tests.integration.backends import app_on_postgres_and_redis
from tests.settings import TEST_ENV


@pytest.fixture(params=["memory", pytest.param("postgres+redis", marks=pytest.mark.postgres)])
def app(request, tmp_path) -> Iterator[Flask]:
    if request.param == "memory":
        yield create_app(TEST_ENV)
        return
    with app_on_postgres_and_redis(request, tmp_path, "by-email") as app:
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def outbox(app) -> list:
    return app.extensions["container"].mailer().outbox


@pytest.fixture
def admin(app, faker) -> dict[str, str]:
    return make_admin(app, faker)


@contextmanager
def database_work(app: Flask) -> Iterator[list[str]]:
    """What reaches the database while the block runs: the SQL statements sent, or in memory the
    units of work entered (a cached read enters none)."""
    seen: list[str] = []
    container = app.extensions["container"]
    with ExitStack() as undo:
        if container.config.storage() == "memory":
            enter = InMemoryUnitOfWork.__enter__
            InMemoryUnitOfWork.__enter__ = lambda uow: seen.append("a unit of work") or enter(uow)
            undo.callback(setattr, InMemoryUnitOfWork, "__enter__", enter)
        else:

            def record(conn, cursor, statement, *args) -> None:
                seen.append(statement)

            event.listen(container.storage.engine(), "before_cursor_execute", record)
            undo.callback(event.remove, container.storage.engine(), "before_cursor_execute", record)
        yield seen


def request_reset(client, email: str) -> None:
    assert client.post("/api/reset-password", json={"email": email}).status_code == 204
    client.application.extensions["deferred"].join()  # handled after the answer


def register(client, outbox: list, faker, email: str) -> dict:
    data = factories.registration(faker, email=email)
    response = client.post("/api/users", json=data)
    assert response.status_code == 201, response.get_json()
    token = token_from(outbox, "confirm_email")
    outbox.clear()
    return {**data, "url": response.headers["Location"], "token": token}


def listed(client, admin: dict, **query) -> tuple[int, list[tuple]]:
    """GET /api/users as the admin: the total and each item's email, confirmed and roles."""
    response = client.get("/api/users", query_string=query, headers=admin)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    return body["total"], [(u["email"], u["confirmed"], u["roles"]) for u in body["items"]]


def test_an_unknown_email_is_answered_from_the_cached_not_found_until_it_is_registered(
    app, client, outbox, faker
):
    email = faker.unique.email()
    request_reset(client, email)  # a miss: the lookup reads, and stores "not found"
    with database_work(app) as seen:
        request_reset(client, email.upper())
    assert seen == []  # no transaction, no lock, no query
    assert outbox == []

    register(client, outbox, faker, email)  # its event ends the cached "not found"
    request_reset(client, email)
    assert [(mail.to, mail.template) for mail, _ in outbox] == [(email, "reset_password")]


def test_an_exact_email_filter_is_answered_by_the_lookup_by_email(app, client, outbox, faker, admin):
    email = faker.unique.email()
    register(client, outbox, faker, email)
    request_reset(client, email)  # its lookup stores the entry the list then answers from
    listed(client, admin, confirmed="true")  # the admin's session state, filled on its first use
    with database_work(app) as seen:
        assert listed(client, admin, email=email.upper()) == (1, [(email, False, ["user"])])
        assert listed(client, admin, email=email, confirmed="true") == (0, [])
        assert listed(client, admin, email=email, page=2, page_size=1) == (1, [])
        graphql = client.post(
            "/api/graphql",
            json={"query": f'{{ users(filter: {{email: "{email}"}}) {{ total items {{ email }} }} }}'},
            headers=admin,
        )
    assert graphql.get_json()["data"]["users"] == {"total": 1, "items": [{"email": email}]}
    assert seen == []
    cache = app.extensions["container"].caching.cache()
    assert cache.get(keys.user_collection(UserFilter(email, None), PageRequest(1, 20))) is None


def test_the_email_filtered_list_follows_every_write_at_once(app, client, outbox, faker, admin):
    """Each answer is read before the write that changes it, so a stale entry would show."""
    email, other = faker.unique.email(), faker.unique.email()
    assert listed(client, admin, email=email) == (0, [])

    account = register(client, outbox, faker, email)
    assert listed(client, admin, email=email) == (1, [(email, False, ["user"])])
    assert listed(client, admin, email=email, confirmed="false")[0] == 1
    assert listed(client, admin, email=email, confirmed="true") == (0, [])

    assert client.post("/api/users/confirm", json={"token": account["token"]}).status_code == 200
    assert listed(client, admin, email=email, confirmed="true") == (1, [(email, True, ["user"])])
    assert listed(client, admin, email=email, confirmed="false") == (0, [])

    user = login(client, email, account["password"])
    assert listed(client, admin, email=other) == (0, [])
    moved = {"email": other, "old_password": account["password"]}
    assert client.patch(account["url"], json=moved, headers=user).status_code == 200
    assert listed(client, admin, email=email) == (0, [])
    assert listed(client, admin, email=other) == (1, [(other, False, ["user"])])

    back = {"email": email, "old_password": account["password"]}
    assert client.patch(account["url"], json=back, headers=user).status_code == 200
    assert listed(client, admin, email=other) == (0, [])
    assert listed(client, admin, email=email) == (1, [(email, False, ["user"])])

    roles = client.put(f"{account['url']}/roles", json={"roles": ["user", "admin"]}, headers=admin)
    assert roles.status_code == 200
    assert listed(client, admin, email=email) == (1, [(email, False, ["admin", "user"])])

    assert client.delete(account["url"], headers=admin).status_code == 204
    assert listed(client, admin, email=email) == (0, [])


def test_other_filters_still_read_cached_pages_of_the_list(app, client, outbox, faker, admin):
    assert listed(client, admin, confirmed="false")[0] == 1  # the admin
    cache = app.extensions["container"].caching.cache()
    assert cache.get(keys.user_collection(UserFilter(None, False), PageRequest(1, 20))) is not None
    register(client, outbox, faker, faker.unique.email())
    assert listed(client, admin, confirmed="false")[0] == 2


def test_the_lookups_by_email_are_logged_and_counted_as_user_by_email(
    app, client, faker, caplog, monkeypatch
):
    def counted(name: str) -> float:
        for line in client.get("/metrics").get_data(as_text=True).splitlines():
            if line.startswith(f'{name}{{policy="user_by_email"}} '):
                return float(line.split()[-1])
        return 0.0

    monkeypatch.setattr(read_through, "SAMPLE_EVERY", 1)
    caplog.set_level(logging.DEBUG, logger="user_service.cache")
    hits, misses = counted("cache_hits_total"), counted("cache_misses_total")
    email = faker.unique.email()
    request_reset(client, email)
    request_reset(client, email)
    reads = [r.getMessage() for r in caplog.records if r.getMessage().startswith("operation=cache.read")]
    assert reads == [
        "operation=cache.read result=miss policy=user_by_email sample=1/1",
        "operation=cache.read result=hit policy=user_by_email sample=1/1",
    ]
    assert (counted("cache_hits_total") - hits, counted("cache_misses_total") - misses) == (1, 1)
