"""The transactional outbox on SQLite and PostgreSQL: envelopes written with the change that
raised them (and only then), claimed with a lease by one relay at a time, marked sent only once
the broker confirmed them; the inbox refuses a second processing."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import OperationalError

from adapters.events.registry import REGISTRY
from adapters.rabbitmq.messages import Delivery
from adapters.sqlalchemy.outage import DatabaseUnavailable
from adapters.sqlalchemy.outbox import AlreadyProcessed, Inbox, Outbox
from adapters.sqlalchemy.tables import outbox as outbox_table
from adapters.sqlalchemy.unit_of_work import SqlAlchemyUnitOfWork
from app.events.relay import Relay, RelaySettings
from app.events.worker import Worker
from app.wiring.events import envelope
from domain.users.events import UserRegistered
from ports.event_transport import Outgoing, PublishFailed
from tests.integration.backends import NOW, RecordingBus


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request):
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_engine")
    engine = request.getfixturevalue("postgres_engine")
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE outbox, inbox, users CASCADE"))
    return engine


def durable_uow(engine, bus=None, **kwargs) -> SqlAlchemyUnitOfWork:
    return SqlAlchemyUnitOfWork(engine, bus or RecordingBus(), envelopes=envelope, **kwargs)


def registered(**overrides) -> UserRegistered:
    return UserRegistered(
        **{"user_id": uuid4(), "email": f"{uuid4().hex}@example.org", "occurred_at": NOW, **overrides}
    )


def rows(engine) -> list:
    with engine.connect() as connection:
        return connection.execute(select(outbox_table).order_by(outbox_table.c.position)).all()


def test_a_commit_writes_each_events_envelope_in_its_transaction(engine):
    events = [registered(), registered()]
    bus = RecordingBus()
    with durable_uow(engine, bus) as uow:
        for event in events:
            uow.record(event)
        uow.commit()
    stored = rows(engine)
    assert [row.event_id for row in stored] == [event.event_id for event in events]
    assert [REGISTRY.unwrap(unsent.envelope) for unsent in Outbox(engine).claim(10, 30)] == events
    assert bus.events == events  # the in-process subscribers too
    assert all(row.sent_at is None and row.correlation_id for row in stored)


def test_a_transaction_that_rolls_back_leaves_no_envelope(engine):
    with durable_uow(engine) as uow:
        uow.record(registered())
    with pytest.raises(RuntimeError), durable_uow(engine) as uow:
        uow.record(registered())
        raise RuntimeError("the handler failed before commit")
    assert rows(engine) == []


def test_without_envelopes_nothing_is_written(engine):
    with SqlAlchemyUnitOfWork(engine, RecordingBus()) as uow:
        uow.record(registered())
        uow.commit()
    assert rows(engine) == []


def write(engine, count: int) -> list[UserRegistered]:
    events = [registered() for _ in range(count)]
    with durable_uow(engine) as uow:
        for event in events:
            uow.record(event)
        uow.commit()
    return events


def test_a_claim_is_held_for_its_lease_then_free_again(engine):
    write(engine, 3)
    clock = {"now": datetime.now(UTC)}
    outbox = Outbox(engine, now=lambda: clock["now"])
    first = outbox.claim(2, lease=30)
    assert [unsent.attempts for unsent in first] == [1, 1]
    second = outbox.claim(10, lease=30)
    assert len(second) == 1 and second[0].position > first[-1].position
    assert outbox.claim(10, lease=30) == []
    clock["now"] += timedelta(seconds=31)  # a relay that died: its leases end
    again = outbox.claim(10, lease=30)
    assert [unsent.position for unsent in again] == [unsent.position for unsent in first + second]
    assert {unsent.attempts for unsent in again} == {2}


def test_sent_rows_are_never_claimed_and_released_rows_are_at_once(engine):
    write(engine, 2)
    outbox = Outbox(engine)
    claimed = outbox.claim(10, lease=30)
    outbox.mark_sent([claimed[0].position])
    outbox.release([claimed[1].position])
    assert [unsent.position for unsent in outbox.claim(10, lease=30)] == [claimed[1].position]
    assert outbox.backlog()[0] == 1
    outbox.mark_sent([claimed[1].position])
    assert outbox.backlog() == (0, 0.0)
    assert outbox.prune(timedelta(0)) == 2 and rows(engine) == []


def test_the_backlog_says_the_age_of_the_oldest_unsent_row(engine):
    write(engine, 1)
    later = datetime.now(UTC) + timedelta(seconds=90)
    depth, age = Outbox(engine, now=lambda: later).backlog()
    assert depth == 1 and 89 <= age <= 95


@pytest.mark.postgres
def test_relays_claiming_at_once_take_disjoint_batches(postgres_engine):
    engine = postgres_engine
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE outbox, inbox"))
    write(engine, 40)
    outbox, barrier, claims = Outbox(engine), threading.Barrier(4), []

    def claim() -> None:
        barrier.wait(5)
        claims.append([unsent.position for unsent in outbox.claim(10, lease=30)])

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    taken = [position for claim in claims for position in claim]
    assert len(taken) == len(set(taken)) == 40


class Broker:
    def __init__(self) -> None:
        self.published: list[Outgoing] = []
        self.down = False

    def publish(self, messages) -> None:
        if self.down:
            raise PublishFailed("connection refused")
        self.published += messages

    def close(self) -> None:
        pass


def test_the_relay_marks_rows_sent_only_once_the_broker_took_them(engine):
    events = write(engine, 3)
    broker = Broker()
    relay = Relay(Outbox(engine), broker, REGISTRY.dumps, settings=RelaySettings(batch=2))
    broker.down = True
    with pytest.raises(PublishFailed):
        relay.run_once()
    assert all(row.sent_at is None and row.claimed_until is None for row in rows(engine))
    broker.down = False
    assert relay.run_once() == 2 and relay.run_once() == 1 and relay.run_once() == 0
    assert [message.event_id for message in broker.published] == [str(event.event_id) for event in events]
    first = broker.published[0]
    assert first.type == "UserRegistered" and REGISTRY.loads(first.body).event_id == events[0].event_id
    assert all(row.sent_at is not None for row in rows(engine))


def test_a_stopped_relay_returns_after_the_batch_in_hand(engine):
    write(engine, 5)
    stop = threading.Event()

    class StoppingBroker(Broker):
        def publish(self, messages) -> None:
            stop.set()  # SIGTERM arrives mid-batch
            super().publish(messages)

    broker = StoppingBroker()
    relay = Relay(Outbox(engine), broker, REGISTRY.dumps, settings=RelaySettings(batch=3))
    thread = threading.Thread(target=relay.run, args=(stop,))
    thread.start()
    thread.join(5)
    assert not thread.is_alive()
    sent = [row for row in rows(engine) if row.sent_at is not None]
    assert len(broker.published) == len(sent) == 3


def test_the_inbox_takes_an_event_once_per_subscriber(engine):
    inbox, event_id = Inbox(engine), uuid4()
    assert not inbox.seen(event_id, "auth.record_login_activity")
    assert inbox.mark(event_id, "auth.record_login_activity")
    assert not inbox.mark(event_id, "auth.record_login_activity")
    assert inbox.mark(event_id, "users.notify_email_changed")
    assert inbox.seen(event_id, "auth.record_login_activity")


def test_a_second_processing_rolls_back_its_writes(engine, make_user):
    event_id, name = uuid4(), "subscriptions.activate_subscription"
    first = durable_uow(engine, inbox=(event_id, name))
    with first as uow:
        uow.users.add(make_user())
        uow.commit()
    assert first.inbox_recorded
    with pytest.raises(AlreadyProcessed), durable_uow(engine, inbox=(event_id, name)) as uow:
        uow.users.add(make_user())
        uow.record(registered())
        uow.commit()
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM users")).scalar() == 1
    assert rows(engine) == []


def test_claimed_rows_count_their_attempts(engine):
    write(engine, 1)
    outbox = Outbox(engine)
    outbox.release([outbox.claim(1, 30)[0].position])
    assert outbox.claim(1, 30)[0].attempts == 2
    with engine.begin() as connection:
        connection.execute(update(outbox_table).values(sent_at=func.now()))
    assert outbox.claim(1, 30) == []


def out_of_reach() -> OperationalError:
    return OperationalError("SELECT", {}, ConnectionRefusedError("connection refused"))


def test_a_relay_waits_out_a_database_outage_and_relays_what_waited(engine):
    events = write(engine, 3)

    class CutOff(Outbox):  # the database refuses the first claims, then answers again
        refusals = 2

        def claim(self, batch, lease):
            if self.refusals:
                self.refusals -= 1
                raise out_of_reach()
            return super().claim(batch, lease)

    broker, stop = Broker(), threading.Event()
    relay = Relay(CutOff(engine), broker, REGISTRY.dumps, settings=RelaySettings(batch=10, poll=0.05))
    thread = threading.Thread(target=relay.run, args=(stop,))
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while len(broker.published) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert thread.is_alive(), "the relay stopped at the outage"
    finally:
        stop.set()
        thread.join(10)
    assert [message.event_id for message in broker.published] == [str(event.event_id) for event in events]


def test_a_worker_says_the_database_is_down_so_the_delivery_is_retried_not_dead_lettered(engine):
    event = registered()

    def subscriber(event, *, uow):
        raise out_of_reach()

    worker = Worker(REGISTRY, {"users.test": subscriber}, lambda *_: durable_uow(engine), Inbox(engine))
    body = REGISTRY.dumps(envelope(event))
    delivery = Delivery("users.test", body, str(uuid4()), None, "UserRegistered", 1, False)
    with pytest.raises(DatabaseUnavailable):
        worker.handle(delivery)

    def bug(event, *, uow):
        raise OperationalError("SELECT nope", {}, sqlite3.OperationalError("no such column: nope"))

    worker = Worker(REGISTRY, {"users.test": bug}, lambda *_: durable_uow(engine), Inbox(engine))
    with pytest.raises(OperationalError):  # not an outage: retried, then dead-lettered
        worker.handle(delivery)
