"""Faker factories for test data. Seeded by the `faker_seed` fixture in tests/conftest.py."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from faker import Faker

from domain.users.commands import RegisterUser
from domain.users.model import User


def password(faker: Faker) -> str:
    # Faker guarantees at least one character of each enabled class.
    return faker.password(length=12, special_chars=False, digits=True, upper_case=True, lower_case=True)


def registration(faker: Faker, **overrides) -> dict:
    data = {
        "email": faker.unique.email(),
        "initials": faker.lexify("??").upper(),
        "password": password(faker),
    }
    return {**data, **overrides}


def register_user(faker: Faker, **overrides) -> RegisterUser:
    return RegisterUser(**registration(faker, **overrides))


def user(faker: Faker, **overrides) -> User:
    data = {
        "id": uuid4(),
        "email": faker.unique.email(),
        "initials": faker.lexify("??").upper(),
        "password_hash": "$argon2id$not-a-real-hash",
        "created_at": faker.date_time_between("-1y", "now", tzinfo=UTC).replace(microsecond=0),
    }
    return User(**{**data, **overrides})


NOW = datetime(2026, 1, 1, tzinfo=UTC)
