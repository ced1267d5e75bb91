"""HTTP tests through Flask's test client, on the in-memory adapters."""

from __future__ import annotations

import pytest

from app.factory import create_app
from tests import factories
from tests.settings import TEST_ENV
from tests.support.accounts import register_over_http


@pytest.fixture
def app():
    return create_app(TEST_ENV)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def outbox(app) -> list:
    return app.extensions["container"].mailer().outbox


def login(client, email: str, password: str) -> dict[str, str]:
    """Log in; the Authorization header of the new session."""
    response = client.post("/api/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.get_json()
    return {"Authorization": f"Bearer {response.get_json()['access_token']}"}


def act_as(client, headers: dict[str, str]) -> None:
    """Send these credentials with every later request of the client (explicit headers win)."""
    client.environ_base["HTTP_AUTHORIZATION"] = headers["Authorization"]


@pytest.fixture
def registered(client, outbox, faker):
    """A registered user, logged in: the client sends its access token from now on. Its JSON,
    URL, ETag, email and password as registered, and Authorization headers; the outbox emptied."""
    user = register_over_http(client, outbox, faker)
    headers = login(client, user["email"], user["password"])
    act_as(client, headers)
    return {**user, "headers": headers}


@pytest.fixture
def admin(app, faker) -> dict[str, str]:
    """The Authorization headers of an admin's session (made the way `create-admin` does)."""
    return make_admin(app, faker)


def make_admin(app, faker) -> dict[str, str]:
    from domain.users.commands import ChangeUserRoles, RegisterUser

    data = factories.registration(faker)
    bus = app.extensions["container"].bus()
    user = bus.handle(RegisterUser(**data))
    bus.handle(ChangeUserRoles(user_id=user.id, roles=frozenset({"user", "admin"})))
    return login(app.test_client(), data["email"], data["password"])


def token_from(outbox: list, template: str) -> str:
    return next(mail.params["token"] for mail, _ in reversed(outbox) if mail.template == template)
