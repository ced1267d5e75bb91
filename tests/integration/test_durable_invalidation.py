"""With durable events, an invalidation that failed while Redis was unreachable is retried from
the outbox by a worker, not from the memory of the process that failed it: that process may die
and the entry is still invalidated. On PostgreSQL, Redis and RabbitMQ; Redis is taken away from
a process through a TCP relay the test controls.

Two apps stand for two gunicorn workers: the writer, whose Redis goes away, and the reader,
which keeps reaching it. The worker runs in a thread with a container of its own.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator

import kombu
import pytest
from prometheus_client import REGISTRY as METRICS

from adapters.events.registry import REGISTRY
from adapters.rabbitmq.publisher import RabbitPublisher
from app import config
from app.events.processes import run_worker, topology
from app.events.relay import Relay
from app.factory import create_app
from tests import factories
from tests.api.conftest import login
from tests.integration.backends import migrated, postgres_url
from tests.settings import TEST_ENV
from tests.support.rabbitmq import AMQP_URL, TcpProxy, amqp_connection, wait_until
from tests.support.redis import REDIS_URL, delete_prefixed, redis_client

pytestmark = pytest.mark.postgres

INVALIDATION = "caching.invalidate_updated"


@pytest.fixture
def env(postgres_schema) -> Iterator[dict[str, str]]:
    amqp_connection().release()  # fails the test, naming TEST_AMQP_URL, when RabbitMQ is out of reach
    client = redis_client()
    prefix = f"test.{secrets.token_hex(4)}."
    env = {
        **TEST_ENV,
        "DATABASE_URL": migrated(postgres_url(postgres_schema())),
        "CACHE_URL": REDIS_URL,
        "CACHE_PREFIX": prefix,
        "CACHE_SOCKET_TIMEOUT": "0.2",
        "CACHE_BREAKER_RESET": "0.3",
        "EVENTS_URL": AMQP_URL,
        "EVENTS_PREFIX": prefix,
        "EVENTS_RETRY_DELAYS": "0.2,0.2",
    }
    yield env
    with kombu.Connection(AMQP_URL) as connection:
        topology(config.load(env)).delete(connection)
    delete_prefixed(client, prefix)
    client.close()


@pytest.fixture
def redis_relay() -> Iterator[TcpProxy]:
    relay = TcpProxy(REDIS_URL)
    yield relay
    relay.close()


def relay_outbox(app, env: dict[str, str]) -> int:
    """Publish everything in the outbox, as `user-service relay` would."""
    container = app.extensions["container"]
    publisher = RabbitPublisher(AMQP_URL, topology(config.load(env)))
    try:
        relay, sent = Relay(container.storage.outbox(), publisher, REGISTRY.dumps), 0
        while batch := relay.run_once():
            sent += batch
        return sent
    finally:
        publisher.close()


class Worker:
    """run_worker in a thread, with a container of its own built from `env`."""

    def __init__(self, env: dict[str, str]) -> None:
        self.container = create_app(env).extensions["container"]
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=run_worker, args=(self.container, config.load(env), [INVALIDATION], self.stop), daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive(), "the worker did not stop"


def initials(client, user_id: str, headers: dict[str, str]) -> str:
    response = client.get(f"/api/users/{user_id}", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["initials"]


def retried() -> float:
    return METRICS.get_sample_value("events_retried_total", {"subscriber": INVALIDATION}) or 0.0


def error_queue_depth(env: dict[str, str]) -> int:
    layout = topology(config.load(env))
    with kombu.Connection(AMQP_URL) as connection, connection.channel() as channel:
        return int(channel.queue_declare(layout.error_queue(INVALIDATION), passive=True).message_count)


def sign_up(app, faker) -> tuple[str, dict[str, str], dict]:
    data = factories.registration(faker)
    client = app.test_client()
    user = client.post("/api/users", json=data).get_json()
    return user["id"], login(client, data["email"], data["password"]), data


def patch_initials(app, user_id: str, headers: dict[str, str], value: str, status: int = 200) -> None:
    """PATCH the initials; 503 where Redis is out of reach: saved, but not acknowledged until its
    invalidation lands (app.acknowledgement)."""
    response = app.test_client().patch(f"/api/users/{user_id}", json={"initials": value}, headers=headers)
    assert response.status_code == status, response.get_json()


def retry_threads() -> set[threading.Thread]:
    return {thread for thread in threading.enumerate() if thread.name == "cache-invalidation-retry"}


def test_an_invalidation_the_writer_failed_is_applied_by_a_worker_after_the_writer_is_gone(
    env, redis_relay, faker
):
    writer = create_app({**env, "CACHE_URL": redis_relay.url})
    reader = create_app(env)
    user_id, headers, _ = sign_up(writer, faker)
    assert initials(reader.test_client(), user_id, headers) != "NW"  # cached by the reader

    redis_relay.refusing = True
    redis_relay.cut()
    others = retry_threads()  # of other tests in this process
    patch_initials(writer, user_id, headers, "NW", 503)  # saved; its invalidation failed
    cache = writer.extensions["container"].caching.cache()
    assert cache.pending_invalidations  # this process's read guard...
    assert retry_threads() <= others  # ...and no thread retrying from its memory
    del writer, cache  # the process that failed the invalidation is gone

    assert relay_outbox(reader, env) >= 1
    worker = Worker(env)
    try:
        wait_until(lambda: initials(reader.test_client(), user_id, headers) == "NW", 10, "the new initials")
    finally:
        worker.close()


def test_the_worker_retries_an_invalidation_for_as_long_as_the_cache_is_down(env, redis_relay, faker):
    cut_off = {**env, "CACHE_URL": redis_relay.url}
    writer, reader = create_app(cut_off), create_app(env)
    user_id, headers, _ = sign_up(writer, faker)
    before = initials(reader.test_client(), user_id, headers)  # cached by the reader
    worker = Worker(cut_off)
    try:
        redis_relay.refusing = True
        redis_relay.cut()
        expected = "ZZ" if before != "ZZ" else "YY"
        patch_initials(writer, user_id, headers, expected, 503)  # saved, not acknowledged
        retried_before = retried()
        relay_outbox(writer, env)
        # Many more tries than EVENTS_RETRY_DELAYS has delays, and none sent to the error queue.
        wait_until(lambda: retried() >= retried_before + 6, 15, "the worker retrying")
        assert error_queue_depth(env) == 0
        assert initials(reader.test_client(), user_id, headers) == before  # not yet: the window

        redis_relay.refusing = False
        wait_until(
            lambda: initials(reader.test_client(), user_id, headers) == expected, 10, "the new initials"
        )
        assert error_queue_depth(env) == 0
    finally:
        worker.close()


def test_with_no_worker_running_the_command_path_invalidates_at_once(env, faker, caplog):
    writer, reader = create_app(env), create_app(env)
    user_id, headers, _ = sign_up(writer, faker)
    before = initials(reader.test_client(), user_id, headers)  # cached by the reader
    expected = "QQ" if before != "QQ" else "PP"
    patch_initials(writer, user_id, headers, expected)
    assert initials(reader.test_client(), user_id, headers) == expected  # no worker, no relay
    assert "operation=event.deferred" not in caplog.text
