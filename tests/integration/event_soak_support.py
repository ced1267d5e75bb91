"""Shared by the tests that run the relay and the worker as real processes next to the web app
(test_events_asynchrony.py, test_event_soak.py): an environment on the real PostgreSQL, Redis
and RabbitMQ that several processes share (the session state and read cache in Redis, not in
one process's memory), and looks at what the worker did (the inbox, the outbox, its log)."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import fields
from typing import Any
from uuid import UUID

import kombu
import pytest
from sqlalchemy import Engine, func, select

from adapters.events.registry import REGISTRY
from adapters.sqlalchemy.tables import inbox, outbox
from app import config
from app.events.processes import topology
from domain.messages import Envelope, Event
from tests.integration.backends import migrated, postgres_url
from tests.settings import TEST_ENV
from tests.support.rabbitmq import AMQP_URL, amqp_connection, wait_until
from tests.support.redis import delete_prefixed, redis_client

# Database 13 of the test Redis: these tests' own, each run under a random key prefix.
REDIS_URL = os.environ.get("TEST_EVENTS_REDIS_URL", "redis://127.0.0.1:6379/13")


@pytest.fixture
def shared_env(postgres_schema) -> Iterator[dict[str, str]]:
    """The environment of the web app, the relay and the workers: a migrated schema of its own,
    RabbitMQ under a random EVENTS_PREFIX, Redis under a random CACHE_PREFIX, short retries.
    Afterwards the broker's queues and exchange and the Redis keys are deleted (the schema is
    dropped with the session)."""
    amqp_connection().release()  # fails the test, naming TEST_AMQP_URL, when RabbitMQ is missing
    cache = redis_client(REDIS_URL)
    token = secrets.token_hex(4)
    env = {
        **TEST_ENV,
        "DATABASE_URL": migrated(postgres_url(postgres_schema())),
        "EVENTS_URL": AMQP_URL,
        "EVENTS_PREFIX": f"test.{token}.",
        "EVENTS_RETRY_DELAYS": "0.2,0.5",
        "CACHE_URL": REDIS_URL,
        "CACHE_PREFIX": f"test.{token}:",
        # Two cores run the test, its workers, PostgreSQL, Redis and RabbitMQ: a 100 ms reply
        # from Redis is load here, not the outage the default timeout is meant to notice.
        "CACHE_SOCKET_TIMEOUT": "2",
    }
    try:
        yield env
    finally:
        try:
            with kombu.Connection(AMQP_URL) as connection:
                topology(config.load(env)).delete(connection)
        finally:
            delete_prefixed(cache, env["CACHE_PREFIX"])
            cache.close()


def eventually(check: Callable[[], Any], within: float = 20.0, what: str = "the condition") -> Any:
    """wait_until with these tests' longer default: processes start and drain queues."""
    return wait_until(check, within, what)


def outbox_events(engine: Engine, kind: type[Event] | None = None) -> list[tuple[int, Envelope, Event]]:
    """The outbox's rows (of events of `kind`), oldest first: position, envelope and event."""
    query = select(outbox).order_by(outbox.c.position)
    if kind is not None:
        query = query.where(outbox.c.type == kind.__name__)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    names = [field.name for field in fields(Envelope)]
    found = []
    for row in rows:
        envelope = Envelope(**{name: getattr(row, name) for name in names})
        found.append((row.position, envelope, REGISTRY.unwrap(envelope)))
    return found


def processed(engine: Engine, subscriber: str, event_ids: Iterable[UUID] | None = None) -> set[UUID]:
    """The events the inbox says `subscriber` processed (of `event_ids`, when given)."""
    query = select(inbox.c.event_id).where(inbox.c.subscriber == subscriber)
    wanted = None if event_ids is None else set(event_ids)
    with engine.connect() as connection:
        done = set(connection.execute(query).scalars())
    return done if wanted is None else done & wanted


def count_rows(engine: Engine, table: Any, *where: Any) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def log_lines(text: str, operation: str, **fields: object) -> list[str]:
    """The lines of a log with `operation=<operation>` and every `key=value` of `fields`."""
    wanted = [rf"\boperation={re.escape(operation)}\b"] + [
        rf"\b{re.escape(key)}={re.escape(str(value))}\b" for key, value in fields.items()
    ]
    return [line for line in text.splitlines() if all(re.search(pattern, line) for pattern in wanted)]
