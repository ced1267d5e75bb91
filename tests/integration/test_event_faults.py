"""Durable events under faults, on PostgreSQL and RabbitMQ with the relay and the worker as real
processes (`user-service relay`, `user-service worker`): what each fault costs is a delay or a
duplicate that the inbox absorbs, never a lost or doubled effect.

* a worker killed by SIGKILL inside its handler: the broker gives the event again, its effect
  (a login_activity row and the inbox row) happens once;
* a relay killed between the broker's confirm and `mark_sent`: the batch is published twice,
  the copies have no second effect;
* the broker out of reach for 10 s while the web app goes on writing: once it is back every
  event written before, during and after arrives, once;
* a poison event: after the retries it lies in the subscriber's error queue with the failure in
  its headers, and the events behind it are processed.

The subscriber under test is `auth.record_login_activity` (it runs in workers only): every
login writes a `UserLoggedIn` to the outbox, and its effect is a `login_activity` row whose id
is the event's id.
"""

from __future__ import annotations

import contextlib
import secrets
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import kombu
import pytest
from sqlalchemy import Connection, text

from adapters.events.correlation import new_id
from adapters.events.registry import REGISTRY
from adapters.sqlalchemy import outbox
from app import config
from app.events.processes import topology
from app.factory import create_app
from domain.auth.events import UserLoggedIn
from tests import factories
from tests.integration.backends import migrated, postgres_url
from tests.integration.event_faults_support import KILLED, run_relay_dying_after_publish
from tests.settings import TEST_ENV
from tests.support.event_processes import EventProcess, EventProcesses
from tests.support.rabbitmq import AMQP_URL, Broker, TcpProxy, amqp_connection

pytestmark = pytest.mark.postgres

LOGINS = "auth.record_login_activity"
RETRY_DELAYS = (0.2, 0.4)  # seconds: EVENTS_RETRY_DELAYS, short for the tests


def eventually(
    check: Callable[[], Any],
    within: float = 15.0,
    what: str = "the condition",
    watching: Sequence[EventProcess] = (),
) -> Any:
    """Polls `check` until it is truthy (its value), failing after `within` seconds, or at once
    with its log when one of the processes `watching` has exited."""
    deadline = time.monotonic() + within
    while not (result := check()):
        for process in watching:
            assert process.alive, f"{process.kind} exited before {what}:\n{process.log_tail()}"
        assert time.monotonic() < deadline, f"{what}: not within {within}s"
        time.sleep(0.05)
    return result


class World:
    """The web app (in-process, its test client) over a schema of its own, the test's own view
    of the database and of the broker, and the names of the login-activity queues."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.app = create_app(env)
        self.client = self.app.test_client()
        self.engine = self.app.extensions["container"].storage.engine()
        layout = topology(config.load(env))
        self.queue, self.error_queue = layout.queue(LOGINS), layout.error_queue(LOGINS)
        self.broker = Broker(AMQP_URL, env["EVENTS_PREFIX"], amqp_connection())

    def sign_up(self, faker) -> UUID:
        """Registers a user and logs them in (one UserLoggedIn); the user's id."""
        data = factories.registration(faker)
        registered = self.client.post("/api/users", json=data)
        assert registered.status_code == 201, registered.get_json()
        credentials = {"email": data["email"], "password": data["password"]}
        login = self.client.post("/api/auth/login", json=credentials)
        assert login.status_code == 200, login.get_json()
        return UUID(registered.get_json()["id"])

    def scalars(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as connection:
            return list(connection.scalars(text(sql), params))

    def logins(self) -> set[UUID]:
        """The ids of every UserLoggedIn written to the outbox."""
        return set(self.scalars("SELECT event_id FROM outbox WHERE type = 'UserLoggedIn'"))

    def activity(self) -> list[UUID]:
        """The login_activity rows' ids (each an event's id), sorted, duplicates kept."""
        return sorted(self.scalars("SELECT id FROM login_activity"))

    def inbox(self) -> list[UUID]:
        """The events the login-activity subscriber is recorded as having processed."""
        return sorted(self.scalars("SELECT event_id FROM inbox WHERE subscriber = :name", name=LOGINS))

    def outbox_rows(self) -> list[Any]:
        with self.engine.connect() as connection:
            return connection.execute(
                text("SELECT event_id, attempts, sent_at, claimed_until > now() AS held FROM outbox")
            ).all()

    def write_event(self, event: UserLoggedIn) -> None:
        """Into the outbox, as a unit of work would."""
        envelope = REGISTRY.wrap(event, correlation_id=new_id(), causation_id=None)
        with self.engine.begin() as connection:
            outbox.write(connection, [envelope], datetime.now(UTC))

    def close(self) -> None:
        self.broker.connection.release()
        self.engine.dispose()


@pytest.fixture
def env(postgres_schema, event_processes: EventProcesses) -> Iterator[dict[str, str]]:  # noqa: F811
    amqp_connection().release()  # fails the test, naming TEST_AMQP_URL, when RabbitMQ is out of reach
    env = {
        **TEST_ENV,
        "DATABASE_URL": migrated(postgres_url(postgres_schema())),
        "EVENTS_URL": AMQP_URL,
        "EVENTS_PREFIX": f"test.{secrets.token_hex(4)}.",
        "EVENTS_RETRY_DELAYS": ",".join(str(delay) for delay in RETRY_DELAYS),
    }
    yield env
    for process in event_processes.started:  # first: a live worker or relay would declare it again
        process.kill()
    with kombu.Connection(AMQP_URL) as connection:
        topology(config.load(env)).delete(connection)


@pytest.fixture
def world(env) -> Iterator[World]:
    world = World(env)
    yield world
    world.close()


@contextlib.contextmanager
def holding(world: World, statement: str) -> Iterator[Connection]:
    """Runs `statement` (a lock) in a transaction of its own, held for the block."""
    with world.engine.connect() as connection:
        connection.execute(text(statement))
        try:
            yield connection
        finally:
            connection.rollback()


def backends_waiting_for(world: World, holder: Connection) -> list[Any]:
    """The database sessions blocked by `holder`'s locks: (pid, query)."""
    pid = holder.scalar(text("SELECT pg_backend_pid()"))
    with world.engine.connect() as connection:
        return connection.execute(
            text("SELECT pid, query FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"),
            {"pid": pid},
        ).all()


def backend_gone(world: World, pid: int) -> bool:
    return not world.scalars("SELECT pid FROM pg_stat_activity WHERE pid = :pid", pid=pid)


@pytest.mark.slow
def test_a_worker_killed_inside_its_handler_gets_the_event_again_and_it_takes_effect_once(
    world: World,
    event_processes: EventProcesses,  # noqa: F811
    faker,
):
    world.sign_up(faker)
    (login,) = world.logins()
    # Inserts into login_activity wait for this lock (reads do not): the worker's handler stops
    # at its insert, inside the transaction that would also record the inbox row.
    with holding(world, "LOCK TABLE login_activity IN EXCLUSIVE MODE") as holder:
        relay = event_processes.relay(world.env)
        first = event_processes.worker(world.env, LOGINS)
        (blocked,) = eventually(
            lambda: backends_waiting_for(world, holder),
            what="the worker's insert waiting for the lock",
            watching=[relay, first],
        )
        assert "INSERT INTO login_activity" in blocked.query
        first.kill()  # SIGKILL, mid-handler: no ack, no commit
        assert first.process.returncode == -signal.SIGKILL
    # Released: the dead worker's insert goes through, then its session finds its client gone
    # and rolls back.
    eventually(lambda: backend_gone(world, blocked.pid), what="the killed worker's session ending")
    assert world.activity() == [] and world.inbox() == []
    eventually(lambda: world.broker.count(world.queue) == 1, what="the event given back to the queue")

    second = event_processes.worker(world.env, LOGINS, name="worker-again")
    eventually(
        lambda: world.activity() == [login], what="the activity of the redelivered event", watching=[second]
    )
    assert second.stop() == 0  # anything it had not acked goes back to the queue
    assert world.activity() == [login]
    assert world.inbox() == [login]
    assert world.broker.count(world.queue) == 0
    assert world.broker.count(world.error_queue) == 0
    assert "operation=worker.duplicate" not in second.log_text()


@pytest.mark.slow
def test_a_relay_killed_between_publish_and_mark_publishes_again_and_the_copy_has_no_effect(
    world: World,
    event_processes: EventProcesses,  # noqa: F811
    faker,
    tmp_path,
):
    for _ in range(3):
        world.sign_up(faker)
    logins = world.logins()
    assert len(logins) == 3

    died = run_relay_dying_after_publish(world.env, tmp_path)
    assert died.returncode == -signal.SIGKILL and KILLED in died.log, died.log
    # The broker has the batch; the outbox still holds it claimed and unsent.
    eventually(lambda: world.broker.count(world.queue) == 3, what="the batch in the queue")
    rows = world.outbox_rows()
    assert rows and all(row.sent_at is None and row.attempts == 1 and row.held for row in rows)

    # The claim would pass to another relay when its lease ends; the lease (RelaySettings.lease,
    # 30 s) is not configurable for `user-service relay`, so it is ended here instead of waited for.
    with world.engine.begin() as connection:
        connection.execute(text("UPDATE outbox SET claimed_until = now() - interval '1 second'"))
    relay = event_processes.relay(world.env)
    eventually(
        lambda: all(row.sent_at is not None for row in world.outbox_rows()),
        what="the outbox sent again",
        watching=[relay],
    )
    assert {row.attempts for row in world.outbox_rows()} == {2}
    eventually(lambda: world.broker.count(world.queue) == 6, what="every login in the queue twice")

    worker = event_processes.worker(world.env, LOGINS)
    eventually(
        lambda: worker.log_text().count("operation=worker.duplicate") == 3,
        what="three copies skipped",
        watching=[worker],
    )
    assert worker.stop() == 0
    assert world.activity() == sorted(logins)
    assert world.inbox() == sorted(logins)
    assert world.broker.count(world.queue) == 0
    assert world.broker.count(world.error_queue) == 0


@pytest.mark.slow
def test_events_written_while_the_broker_is_cut_off_all_arrive_once_it_is_back(
    world: World,
    event_processes: EventProcesses,  # noqa: F811
    proxy: TcpProxy,  # noqa: F811
    faker,
):
    through_proxy = {**world.env, "EVENTS_URL": proxy.url}
    relay = event_processes.relay(through_proxy)
    worker = event_processes.worker(through_proxy, LOGINS)

    before = [world.sign_up(faker) for _ in range(3)]
    processes = [relay, worker]
    eventually(
        lambda: len(world.activity()) == len(before), what="the activity before the cut", watching=processes
    )

    proxy.refusing = True
    proxy.cut()
    during = []
    back_at = time.monotonic() + 10
    while time.monotonic() < back_at:  # the web app goes on: logins keep their pace, ~4 a second
        during.append(world.sign_up(faker))
        time.sleep(0.25)
    assert len(during) >= 5  # the web app went on writing
    assert len(world.activity()) == len(before)  # nothing came through the cut
    relay.wait_for_log("operation=broker.unreachable", timeout=1)
    worker.wait_for_log("operation=rabbitmq.unreachable", timeout=1)
    proxy.refusing = False

    after = [world.sign_up(faker) for _ in range(3)]
    logins = world.logins()
    assert len(logins) == len(before) + len(during) + len(after)
    eventually(
        lambda: world.activity() == sorted(logins),
        within=25,
        what="every login's activity",
        watching=processes,
    )
    relay.wait_for_log("operation=broker.recovered", timeout=1)
    worker.wait_for_log("operation=rabbitmq.recovered", timeout=1)
    assert world.inbox() == sorted(logins)
    assert world.broker.count(world.error_queue) == 0


@pytest.mark.slow
def test_a_poison_event_goes_to_the_error_queue_after_the_retries_and_those_behind_it_are_processed(
    world: World,
    event_processes: EventProcesses,  # noqa: F811
    faker,
):
    user = world.sign_up(faker)  # one login before the poison
    # A login whose kind does not fit login_activity.kind (VARCHAR(32)): PostgreSQL refuses the
    # insert every time, so every attempt fails the same way.
    poison = UserLoggedIn(user_id=user, session_id=uuid4(), kind="k" * 40, occurred_at=datetime.now(UTC))
    world.write_event(poison)
    for _ in range(3):  # and three behind it
        world.sign_up(faker)
    good = world.logins() - {poison.event_id}

    relay = event_processes.relay(world.env)
    worker = event_processes.worker(world.env, LOGINS)
    processes = [relay, worker]
    eventually(
        lambda: world.broker.count(world.error_queue) == 1,
        what="the poison in the error queue",
        watching=processes,
    )
    eventually(lambda: world.activity() == sorted(good), what="the good logins' activity", watching=processes)
    assert worker.stop() == 0

    (dead,) = world.broker.take(world.error_queue)
    assert dead.properties["message_id"] == str(poison.event_id)
    headers = dead.headers
    assert headers["x-error-type"] == "sqlalchemy.exc.DataError"
    assert "value too long" in headers["x-error-message"]
    assert headers["x-retry-count"] == len(RETRY_DELAYS)
    assert headers["x-subscriber"] == LOGINS
    assert worker.log_text().count("operation=events.retry") == len(RETRY_DELAYS)
    assert poison.event_id not in world.inbox() and world.inbox() == sorted(good)
    assert world.broker.count(world.queue) == 0
