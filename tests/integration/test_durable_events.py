"""Durable events end to end on PostgreSQL and RabbitMQ: the request writes the outbox, the relay
publishes it, a worker (a thread here, with the service's own container) runs the subscribers
placed in workers, once per event however often it is delivered. Meanwhile the command path has
already done its part: a login's session state is written when the login returns."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from uuid import uuid4

import kombu
import pytest
from prometheus_client import REGISTRY as METRICS
from sqlalchemy import text

from adapters.events.registry import REGISTRY
from adapters.rabbitmq.messages import Delivery
from adapters.rabbitmq.publisher import RabbitPublisher
from app import config
from app.events.processes import build_worker, run_worker, topology
from app.events.relay import Relay
from app.factory import create_app
from domain.auth.events import UserLoggedIn
from tests import factories
from tests.integration.backends import migrated, postgres_url
from tests.settings import TEST_ENV
from tests.support.rabbitmq import AMQP_URL, amqp_connection

pytestmark = pytest.mark.postgres


@pytest.fixture
def env(postgres_schema) -> Iterator[dict[str, str]]:
    amqp_connection().release()  # fails the test, naming TEST_AMQP_URL, when RabbitMQ is out of reach
    prefix = f"test.{secrets.token_hex(4)}."
    env = {
        **TEST_ENV,
        "DATABASE_URL": migrated(postgres_url(postgres_schema())),
        "EVENTS_URL": AMQP_URL,
        "EVENTS_PREFIX": prefix,
    }
    yield env
    with kombu.Connection(AMQP_URL) as connection:
        layout = topology(config.load(env))
        layout.delete(connection)


class Service:
    """The web app, one relay and one worker over the same database and broker."""

    def __init__(self, env: dict[str, str]) -> None:
        self.app = create_app(env)
        self.client = self.app.test_client()
        self.container = self.app.extensions["container"]
        self.settings = config.load(env)
        self.layout = topology(self.settings)
        self.publisher = RabbitPublisher(AMQP_URL, self.layout)
        self.relay = Relay(self.container.storage.outbox(), self.publisher, REGISTRY.dumps)
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None

    def relay_all(self) -> int:
        sent = 0
        while batch := self.relay.run_once():
            sent += batch
        return sent

    def start_worker(self) -> None:
        self._stop.clear()
        self._worker = threading.Thread(
            target=run_worker, args=(self.container, self.settings, [], self._stop), daemon=True
        )
        self._worker.start()

    def stop_worker(self) -> None:
        self._stop.set()
        if self._worker is not None:
            self._worker.join(10)
            assert not self._worker.is_alive(), "the worker did not stop"

    def close(self) -> None:
        self.stop_worker()
        self.publisher.close()


@pytest.fixture
def service(env) -> Iterator[Service]:
    service = Service(env)
    yield service
    service.close()


def eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(0.05)


def sign_up(service: Service, faker) -> tuple[dict, dict[str, str]]:
    data = factories.registration(faker)
    user = service.client.post("/api/users", json=data).get_json()
    login = service.client.post(
        "/api/auth/login", json={"email": data["email"], "password": data["password"]}
    )
    assert login.status_code == 200
    return {**user, "password": data["password"]}, {
        "Authorization": f"Bearer {login.get_json()['access_token']}"
    }


def activity(service: Service, user: dict, headers: dict[str, str]) -> list[dict]:
    return service.client.get(f"/api/users/{user['id']}/activity", headers=headers).get_json()["items"]


def duplicates(name: str) -> float:
    return METRICS.get_sample_value("events_duplicates_total", {"subscriber": name}) or 0.0


def test_a_login_works_at_once_and_its_activity_arrives_through_the_worker(service, faker):
    user, headers = sign_up(service, faker)
    # The command path wrote the session state: the token works with no worker running.
    assert service.client.get("/api/auth/me", headers=headers).status_code == 200
    assert activity(service, user, headers) == []  # the activity consumer runs in workers
    assert service.relay_all() >= 2  # UserRegistered, UserLoggedIn
    service.start_worker()
    eventually(lambda: len(activity(service, user, headers)) == 1)
    assert activity(service, user, headers)[0]["kind"] == "login"


def test_an_event_delivered_twice_has_one_effect(service, faker):
    user, headers = sign_up(service, faker)
    service.relay_all()
    service.start_worker()
    eventually(lambda: len(activity(service, user, headers)) == 1)
    before = duplicates("auth.record_login_activity")
    engine = service.container.storage.engine()
    with engine.begin() as connection:  # as if a relay died between publishing and marking
        connection.execute(text("UPDATE outbox SET sent_at = NULL, claimed_until = NULL"))
    assert service.relay_all() >= 2
    eventually(lambda: duplicates("auth.record_login_activity") > before)
    time.sleep(0.3)
    assert len(activity(service, user, headers)) == 1


def test_a_mail_survives_until_a_worker_sends_it(service, faker):
    user, headers = sign_up(service, faker)
    outbox = service.container.mailer().outbox
    outbox.clear()
    changed = service.client.patch(
        f"/api/users/{user['id']}",
        json={"password": "N3w-password", "old_password": user["password"]},
        headers=headers,
    )
    assert changed.status_code == 200
    assert [mail.template for mail, _ in outbox] == []  # not in the request any more
    service.relay_all()
    service.start_worker()
    eventually(lambda: [mail.template for mail, _ in outbox] == ["password_changed"])


def test_an_event_written_while_no_worker_runs_waits_in_the_queue(service, faker):
    user, headers = sign_up(service, faker)
    service.relay_all()  # queued: nobody consumes yet
    time.sleep(0.3)
    assert activity(service, user, headers) == []
    service.start_worker()
    eventually(lambda: len(activity(service, user, headers)) == 1)


def test_an_event_no_worker_consumes_is_relayed_and_holds_nothing_up(service, faker):
    user, headers = sign_up(service, faker)
    subscribed = service.client.post("/api/subscriptions", json={"plan": "monthly"}, headers=headers)
    assert subscribed.status_code == 201  # SubscriptionRegistered: no subscriber here is bound to it
    assert service.relay_all() >= 3
    engine = service.container.storage.engine()
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM outbox WHERE sent_at IS NULL")).scalar() == 0


def test_two_copies_of_an_event_handled_at_the_same_moment_have_one_effect_and_neither_fails(service, faker):
    """A relay sending again, or the broker redelivering, while the first copy is at work: the
    second waits on the inbox's key and finds it taken, before writing anything."""
    name = "auth.record_login_activity"
    user = factories.user(faker)
    with service.container.storage.uow() as uow:
        uow.users.add(user)
        uow.commit()
    worker = build_worker(service.container, [name])
    failed = METRICS.get_sample_value("events_failed_total", {"subscriber": name}) or 0.0
    for _ in range(20):
        event = UserLoggedIn(user_id=user.id, session_id=uuid4(), kind="login", occurred_at=datetime.now(UTC))
        body = REGISTRY.dumps(REGISTRY.wrap(event, correlation_id="c", causation_id=None))
        delivery = Delivery(name, body, str(event.event_id), "c", "UserLoggedIn", attempt=1, redelivered=True)
        barrier, errors = threading.Barrier(2), []

        def handle() -> None:
            barrier.wait()
            try:
                worker.handle(delivery)
            except Exception as error:  # the assertion below shows it
                errors.append(error)

        copies = [threading.Thread(target=handle) for _ in range(2)]
        for copy in copies:
            copy.start()
        for copy in copies:
            copy.join(10)
        assert errors == []
    assert (METRICS.get_sample_value("events_failed_total", {"subscriber": name}) or 0.0) == failed
    with service.container.storage.engine().connect() as connection:
        rows = connection.execute(text("SELECT count(*) FROM login_activity")).scalar()
        processed = connection.execute(text("SELECT count(*) FROM inbox")).scalar()
    assert (rows, processed) == (20, 20)
