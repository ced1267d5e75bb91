"""HTTP tests through Flask's test client, on the in-memory adapters."""

from __future__ import annotations

import pytest

from app.factory import create_app
from tests import factories
from tests.settings import TEST_ENV


@pytest.fixture
def app():
    return create_app(TEST_ENV)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def outbox(app) -> list:
    return app.extensions["container"].mailer().outbox


@pytest.fixture
def registered(client, outbox, faker):
    """A registered user: its JSON, URL, ETag and password; the outbox emptied."""
    data = factories.registration(faker)
    response = client.post("/api/users", json=data)
    assert response.status_code == 201, response.get_json()
    outbox.clear()
    return {
        "json": response.get_json(),
        "url": response.headers["Location"],
        "etag": response.headers["ETag"],
        "password": data["password"],
    }


def token_from(outbox: list, template: str) -> str:
    return next(mail.params["token"] for mail, _ in reversed(outbox) if mail.template == template)
