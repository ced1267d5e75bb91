"""Backends for the contract suites: in-memory, SQLite (a migrated file) and PostgreSQL (a
schema of its own per test session, migrated, dropped at the end).

PostgreSQL tests fail, never skip, when the server is missing: TEST_POSTGRES_URL says where
it is (default postgresql+psycopg://root@127.0.0.1:5432/test).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from datetime import timedelta
from itertools import count
from uuid import UUID

import pytest
from faker import Faker
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from adapters.memory.unit_of_work import InMemoryDatabase, InMemoryUnitOfWork
from adapters.sqlalchemy.engine import make_engine
from adapters.sqlalchemy.migrate import upgrade
from adapters.sqlalchemy.unit_of_work import SqlAlchemyUnitOfWork
from domain.users.model import User
from tests.integration.backends import NOW, Backend, postgres_url
from tests.support.event_processes import event_processes  # noqa: F401  (fixtures of these suites)
from tests.support.rabbitmq import proxy  # noqa: F401


@pytest.fixture
def make_user(faker: Faker) -> Callable[..., User]:
    """Users with distinct emails and creation times (a microsecond apart, to check precision)."""
    ticks = count()

    def make(**overrides: object) -> User:
        data = {
            "id": UUID(faker.uuid4()),
            "email": faker.unique.email(),
            "initials": faker.lexify("??").upper(),
            "password_hash": faker.sha256(),
            "created_at": NOW + timedelta(seconds=(tick := next(ticks)), microseconds=tick),
        }
        return User(**{**data, **overrides})

    return make


@pytest.fixture(scope="session")
def postgres_schema() -> Iterator[Callable[[], str]]:
    """Creates uniquely named schemas (so parallel runs never meet) and drops them at the end."""
    admin = create_engine(postgres_url(), poolclass=NullPool, isolation_level="AUTOCOMMIT")
    created: list[str] = []

    def create() -> str:
        schema = f"t_{secrets.token_hex(6)}"
        try:
            with admin.connect() as connection:
                connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        except OperationalError as error:
            reason = str(error.orig)
        else:
            created.append(schema)
            return schema
        pytest.fail(
            f"PostgreSQL is required by the postgres tests and is not reachable at "
            f"{make_url(postgres_url())} (set TEST_POSTGRES_URL): {reason}",
            pytrace=False,
        )

    yield create
    if created:
        with admin.connect() as connection:
            for schema in created:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(scope="session")
def postgres_engine(postgres_schema: Callable[[], str]) -> Iterator[Engine]:
    engine = make_engine(postgres_url(postgres_schema()))
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(tmp_path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'users.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "memory":
        db = InMemoryDatabase()
        return Backend("memory", lambda bus: InMemoryUnitOfWork(db, bus))
    if request.param == "sqlite":
        engine = request.getfixturevalue("sqlite_engine")
        return Backend(
            "sqlite",
            lambda bus: SqlAlchemyUnitOfWork(engine, bus),
            serialises_units_of_work=True,
            read_unit_of_work=lambda bus: SqlAlchemyUnitOfWork(engine, bus, read_only=True),
        )
    engine = request.getfixturevalue("postgres_engine")
    with engine.begin() as connection:  # the schema lives for the session: start each test empty
        connection.execute(
            text(
                "TRUNCATE payments, subscriptions, login_activity, refresh_tokens, sessions, "
                "account_tokens, users"
            )
        )
    return Backend(
        "postgres",
        lambda bus: SqlAlchemyUnitOfWork(engine, bus),
        read_unit_of_work=lambda bus: SqlAlchemyUnitOfWork(engine, bus, read_only=True),
    )
