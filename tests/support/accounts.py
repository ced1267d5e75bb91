"""Registered accounts for the tests, made the two ways a user registers: through the message bus
(`register`) and through the HTTP API (`register_over_http`). Either way the registration's data
come from the Faker factories and its confirmation mail is taken out of the recorded outbox, so
a test sees only the mail it causes; the account stays unconfirmed."""

from __future__ import annotations

from typing import Any, NamedTuple
from uuid import UUID

from faker import Faker

from domain.users.commands import RegisterUser
from domain.users.model import User
from tests import factories


class Account(NamedTuple):
    """A user registered through the bus and its password; unpacks as `user, password`."""

    user: User
    password: str

    @property
    def id(self) -> UUID:
        return self.user.id

    @property
    def email(self) -> str:
        return self.user.email


def register(bus, outbox: list, faker: Faker, **overrides) -> Account:
    """Registers a user through `bus` and empties `outbox` of its mail."""
    data = factories.registration(faker, **overrides)
    user = bus.handle(RegisterUser(**data))
    outbox.clear()
    return Account(user, data["password"])


def register_over_http(client, outbox: list, faker: Faker, **overrides) -> dict[str, Any]:
    """Registers a user with POST /api/users on a Flask test `client` and empties `outbox` of its
    mail: the response's JSON, the user's URL and ETag, and the email and password registered."""
    data = factories.registration(faker, **overrides)
    response = client.post("/api/users", json=data)
    assert response.status_code == 201, response.get_json()
    outbox.clear()
    return {
        "json": response.get_json(),
        "url": response.headers["Location"],
        "etag": response.headers["ETag"],
        "email": data["email"],
        "password": data["password"],
    }
