"""Test doubles and helpers shared by the integration suites (fixtures are in conftest.py)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy.engine import make_url

from domain.messages import Event
from ports.event_bus import EventBus
from ports.unit_of_work import UnitOfWork

DEFAULT_POSTGRES_URL = "postgresql+psycopg://root@127.0.0.1:5432/test"
NOW = datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)


class RecordingBus:
    """An event bus that keeps what it was given."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def publish(self, event: Event) -> None:
        self.events.append(event)


@dataclass
class Backend:
    name: str
    unit_of_work: Callable[[EventBus], UnitOfWork]
    # SQLite's BEGIN IMMEDIATE runs units of work one at a time: a second one waits for the
    # first to end, so two can never hold the same version of a user at once.
    serialises_units_of_work: bool = False
    bus: RecordingBus = field(default_factory=RecordingBus)
    # What queries use (no write lock); the same as unit_of_work where that takes none.
    read_unit_of_work: Callable[[EventBus], UnitOfWork] | None = None

    def uow(self, bus: EventBus | None = None) -> UnitOfWork:
        return self.unit_of_work(bus or self.bus)

    def read_uow(self, bus: EventBus | None = None) -> UnitOfWork:
        return (self.read_unit_of_work or self.unit_of_work)(bus or self.bus)


def postgres_url(schema: str | None = None) -> str:
    url = make_url(os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))
    query = {"connect_timeout": "5"}
    if schema is not None:
        query["options"] = f"-csearch_path={schema}"
    return url.update_query_dict(query).render_as_string(hide_password=False)


def migrated(url: str) -> str:
    """`url`, its database brought to the newest schema first: the service migrates only the
    embedded SQLite database itself, and refuses to start on a PostgreSQL schema behind."""
    from adapters.sqlalchemy.engine import make_engine
    from adapters.sqlalchemy.migrate import upgrade

    engine = make_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    return url


@contextmanager
def app_on_sql(request: Any, tmp_path: Path, database: str | None = None, **env: str) -> Iterator[Flask]:
    """The app on a migrated SQLite file or PostgreSQL schema, as `database` ("sqlite",
    "postgres"; by default `request.param`) says, with `env` over the tests' environment."""
    from adapters.sqlalchemy.migrate import upgrade
    from app.factory import create_app
    from tests.settings import TEST_ENV

    if (database or request.param) == "sqlite":
        url = f"sqlite:///{tmp_path / 'users.db'}"
    else:
        url = migrated(postgres_url(request.getfixturevalue("postgres_schema")()))
    app = create_app({**TEST_ENV, "DATABASE_URL": url, **env})
    engine = app.extensions["container"].storage.engine()
    upgrade(engine)
    try:
        yield app
    finally:
        engine.dispose()


@contextmanager
def app_on_postgres_and_redis(request: Any, tmp_path: Path, name: str) -> Iterator[Flask]:
    """The app on a migrated PostgreSQL schema of its own and on Redis under a key prefix of its
    own (`test:<name>:<random>:`), deleted afterwards."""
    import secrets

    from tests.support.redis import REDIS_URL, delete_prefixed, redis_client

    client, prefix = redis_client(), f"test:{name}:{secrets.token_hex(6)}:"
    try:
        with app_on_sql(request, tmp_path, "postgres", CACHE_URL=REDIS_URL, CACHE_PREFIX=prefix) as app:
            yield app
    finally:
        delete_prefixed(client, prefix)
        client.close()


@contextmanager
def fuzzed_app(request: Any, tmp_path_factory: Any, name: str) -> Iterator[Flask]:
    """The app a schemathesis run calls, as `request.param` says: "embedded" (a SQLite file and
    the host's local store, in a folder of its own) or "postgres+redis" (a migrated schema of its
    own; Redis under a key prefix of its own, emptied afterwards). Its body limit is far above
    what the generator produces: schemathesis counts no 413 among the ways to refuse input (the
    limit itself is tested elsewhere)."""
    import secrets

    from adapters.sqlalchemy.migrate import upgrade
    from app.factory import create_app
    from tests.settings import TEST_ENV
    from tests.support.redis import REDIS_URL, delete_prefixed, redis_client

    env = {**TEST_ENV, "MAX_CONTENT_LENGTH": str(1 << 20)}
    if request.param == "embedded":
        del env["DATABASE_URL"], env["CACHE_URL"]
        yield create_app({**env, "INSTANCE_PATH": str(tmp_path_factory.mktemp(name))})
        return
    client, prefix = redis_client(), f"test:{name}:{secrets.token_hex(6)}:"
    database_url = migrated(postgres_url(request.getfixturevalue("postgres_schema")()))
    app = create_app({**env, "CACHE_URL": REDIS_URL, "CACHE_PREFIX": prefix, "DATABASE_URL": database_url})
    upgrade(app.extensions["container"].storage.engine())
    try:
        yield app
    finally:
        app.extensions["container"].storage.engine().dispose()
        delete_prefixed(client, prefix)
        client.close()
