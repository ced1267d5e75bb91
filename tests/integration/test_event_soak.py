"""A soak of the durable events: EVENT_SOAK_EVENTS (default 10,000) UserLoggedIn events go from
the outbox through a real `user-service relay` to two real `user-service worker` processes
running `auth.record_login_activity`, while one of the two is SIGKILLed every 1-3 s (at a random
moment, the victim chosen at random) and a replacement started. Every event must have exactly
one effect: one login_activity row and one inbox row each, none lost, none twice, nothing
dead-lettered. A message delivered again after its effect committed (the worker died before
its ack) is allowed, and counted from the workers' `operation=worker.duplicate` lines. Half-way,
EVENT_SOAK_RESEND (default 2%) of the events are relayed a second time, as by a relay that died
between publishing and marking: each must be delivered twice and still have one effect.

The events are written straight into the outbox (a few users made through the unit of work,
their session state written as a login would), not through HTTP: argon2 per login would make
the generator, not the workers, the subject. Figures are printed (run with -s to see them):
throughput, kills, duplicates delivered, retries.

    EVENT_SOAK_EVENTS=2000 .venv/bin/pytest -n0 -s tests/integration/test_event_soak.py

Workers are killed for EVENT_SOAK_KILL_SECONDS (default 120) at most; if events are left then
(a slow or busy machine), the last two workers finish them unharmed, and the whole run is
bounded by EVENT_SOAK_TIMEOUT (default 360 s). EVENT_SOAK_SEED replays a run's kill schedule;
EVENT_SOAK_KILLS=0 kills nothing (the throughput to compare with).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from uuid import UUID, uuid4

import kombu
import pytest
from sqlalchemy import func, select, text, update

from adapters.events import correlation
from adapters.events.registry import REGISTRY
from adapters.sqlalchemy import outbox as outbox_rows
from adapters.sqlalchemy.tables import inbox, login_activity, outbox
from app import config
from app.events.processes import topology
from app.factory import create_app
from application.session_state.states import identity_of, roles_of
from domain.auth.events import UserLoggedIn
from domain.session_state.model import UserState
from tests import factories
from tests.integration import event_soak_support
from tests.integration.event_soak_support import count_rows, eventually, log_lines
from tests.support.event_processes import EventProcess, EventProcesses
from tests.support.rabbitmq import AMQP_URL

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

# The fixture of the shared environment (event_processes comes from conftest.py).
shared_env = event_soak_support.shared_env

EVENTS = int(os.environ.get("EVENT_SOAK_EVENTS", "10000"))
KILL_SECONDS = float(os.environ.get("EVENT_SOAK_KILL_SECONDS", "120"))
TIMEOUT = float(os.environ.get("EVENT_SOAK_TIMEOUT", "360"))
SUBSCRIBER = "auth.record_login_activity"
USERS = 8
CHUNK = 1000  # envelopes per outbox transaction
KILL_EVERY = (1.0, 3.0)  # seconds between kills, drawn uniformly
RESEND = float(os.environ.get("EVENT_SOAK_RESEND", "0.02"))  # share of the events relayed twice
STALL = 15.0  # seconds without progress after which an empty broker means events were lost
KILLING = os.environ.get("EVENT_SOAK_KILLS", "1") != "0"  # 0: no kills, the baseline throughput


@pytest.fixture
def service(shared_env) -> Iterator:
    """The service's container over the shared environment: its engine, units of work and
    session-state store (the generator's tools)."""
    container = create_app(shared_env).extensions["container"]
    yield container
    container.storage.engine().dispose()


def generate(container, faker, count: int) -> set[UUID]:
    """`count` UserLoggedIn events of a few users, written to the outbox; their ids."""
    users = [factories.user(faker) for _ in range(USERS)]
    with container.storage.uow() as uow:
        for user in users:
            uow.users.add(user)
        uow.commit()
    states = container.caching.states()
    for user in users:  # what a login's handler writes first: the consumer finds it (no miss)
        states.write(UserState(user.id, identity=identity_of(user), roles=roles_of(user)))
    engine, now, ids = container.storage.engine(), datetime.now(UTC), set()
    for start in range(0, count, CHUNK):
        events = [
            UserLoggedIn(
                user_id=users[n % USERS].id,
                session_id=uuid4(),
                kind="login",
                client_address="127.0.0.1",
                user_agent="event soak",
                occurred_at=now,
            )
            for n in range(start, min(count, start + CHUNK))
        ]
        correlation_id = correlation.new_id()
        envelopes = [
            REGISTRY.wrap(event, correlation_id=correlation_id, causation_id=None) for event in events
        ]
        with engine.begin() as connection:
            outbox_rows.write(connection, envelopes, now)
        ids.update(event.event_id for event in events)
    return ids


def queue_depths(env: dict[str, str]) -> dict[str, int]:
    """Messages ready in the subscriber's queue, its retry queues and its error queue."""
    layout = topology(config.load(env))
    names = [
        layout.queue(SUBSCRIBER),
        *(layout.retry_queue(SUBSCRIBER, n) for n in range(1, len(layout.retry_delays) + 1)),
        layout.error_queue(SUBSCRIBER),
    ]
    with kombu.Connection(AMQP_URL) as connection, connection.channel() as channel:
        return {name: int(channel.queue_declare(name, passive=True).message_count) for name in names}


def ids_in(engine, column, *where) -> list[UUID]:
    with engine.connect() as connection:
        return list(connection.execute(select(column).where(*where)).scalars())


class Killer:
    """Two workers; at random moments one of those consuming is SIGKILLed and replaced."""

    def __init__(self, processes: EventProcesses, env: dict[str, str], rng: random.Random) -> None:
        self._processes, self._env, self._rng = processes, env, rng
        self.workers = [self._start(ready=True) for _ in range(2)]
        self.kills = 0
        self._next = time.monotonic() + rng.uniform(*KILL_EVERY)

    def _start(self, ready: bool = False) -> EventProcess:
        return self._processes.start(
            "worker",
            self._env,
            "--subscriber",
            SUBSCRIBER,
            name="worker",
            ready="operation=events.consume" if ready else None,
        )

    def check(self) -> None:
        for worker in self.workers:  # a worker that died of itself is a failure, not a kill
            assert worker.alive, f"a worker exited ({worker.process.returncode}):\n{worker.log_tail()}"

    def tick(self) -> None:
        self.check()
        if not KILLING or time.monotonic() < self._next:
            return
        consuming = [w for w in self.workers if "operation=events.consume" in w.log_text()]
        if consuming:
            victim = self._rng.choice(consuming)
            victim.kill()
            self.kills += 1
            self.workers = [w for w in self.workers if w is not victim] + [self._start()]
        self._next = time.monotonic() + self._rng.uniform(*KILL_EVERY)


def resend(engine, count: int) -> set[UUID]:
    """As if a relay died between publishing and marking: `count` rows sent already, at
    random, are unsent again, and the relay publishes them once more. Their ids."""
    chosen = (
        select(outbox.c.position).where(outbox.c.sent_at.is_not(None)).order_by(func.random()).limit(count)
    )
    unsend = (
        update(outbox)
        .where(outbox.c.position.in_(chosen.scalar_subquery()))
        .values(sent_at=None, claimed_until=None)
        .returning(outbox.c.event_id)
    )
    with engine.begin() as connection:
        ids = set(connection.execute(unsend).scalars())
        connection.execute(text(f"NOTIFY {outbox_rows.CHANNEL}"))
    return ids


def test_events_through_workers_killed_at_random_have_exactly_one_effect_each(
    shared_env, service, event_processes, faker
):
    seed = int(os.environ.get("EVENT_SOAK_SEED", random.randrange(2**32)))
    rng = random.Random(seed)
    engine = service.storage.engine()
    began = time.monotonic()
    expected = generate(service, faker, EVENTS)
    generated = time.monotonic() - began
    assert len(expected) == EVENTS

    killer = Killer(event_processes, shared_env, rng)
    started = time.monotonic()
    relay = event_processes.relay(shared_env)
    done_where = inbox.c.subscriber == SUBSCRIBER
    killing_until, deadline = started + KILL_SECONDS, started + TIMEOUT
    done_under_kills, progress = 0, (0, started)
    resent: set[UUID] | None = None
    while (done := count_rows(engine, inbox, done_where)) < EVENTS:
        assert relay.alive, f"the relay exited:\n{relay.log_tail()}"
        now = time.monotonic()
        assert now < deadline, (
            f"{done} of {EVENTS} events processed in {TIMEOUT}s (seed {seed}, {killer.kills} kills); "
            f"queues {queue_depths(shared_env)}"
        )
        if done != progress[0]:
            progress = (done, now)
        elif now - progress[1] > STALL:  # nothing done for a while: is anything left to do?
            depths = queue_depths(shared_env)
            unsent = count_rows(engine, outbox, outbox.c.sent_at.is_(None))
            assert unsent or any(depths.values()), (
                f"{EVENTS - done} events lost: all relayed, none queued, none processed "
                f"(seed {seed}, {killer.kills} kills); queues {depths}"
            )
            progress = (done, now)
        if resent is None and done >= EVENTS // 2:
            resent = resend(engine, int(EVENTS * RESEND))
        if now < killing_until:
            killer.tick()
            done_under_kills = done
        else:
            killer.check()
        time.sleep(0.1)
    elapsed = time.monotonic() - started
    if elapsed < KILL_SECONDS:
        done_under_kills = EVENTS
    resent = resent or set()

    # No more kills: what is still queued (copies of events already done) drains, then stop.
    def drained() -> bool:
        if count_rows(engine, outbox, outbox.c.sent_at.is_(None)) or any(queue_depths(shared_env).values()):
            return False
        time.sleep(0.5)  # and stays so: no worker was holding one in hand
        return not any(queue_depths(shared_env).values())

    eventually(drained, within=30, what="the queues' draining")
    for worker in killer.workers:
        assert worker.stop() == 0, worker.log_tail()
    assert relay.stop() == 0, relay.log_tail()

    logs = "\n".join(process.log_text() for process in event_processes.started if process.kind == "worker")
    duplicates = log_lines(logs, "worker.duplicate", subscriber=SUBSCRIBER)
    duplicated = {UUID(line.rsplit("event=", 1)[1].split()[0]) for line in duplicates}
    retries = log_lines(logs, "events.retry", subscriber=SUBSCRIBER)
    dead = log_lines(logs, "events.dead_letter", subscriber=SUBSCRIBER)
    misses = log_lines(logs, "user_state.miss")
    rows, records = ids_in(engine, login_activity.c.id), ids_in(engine, inbox.c.event_id, done_where)
    unsent = count_rows(engine, outbox, outbox.c.sent_at.is_(None))
    depths = queue_depths(shared_env)
    print(
        f"\nevent soak (seed {seed}): {EVENTS} events written to the outbox in {generated:.1f}s; "
        f"processed in {elapsed:.1f}s = {EVENTS / elapsed:.0f} events/s through 2 workers; "
        f"{killer.kills} worker kills ({len(event_processes.started) - 1} worker processes in all), "
        f"{done_under_kills if KILLING else 'no'} events done while killing; "
        f"{len(resent)} events relayed twice; "
        f"duplicates delivered {len(duplicates)} ({len(duplicated)} events, "
        f"{len(duplicated - resent)} of them not relayed twice: redelivered after a kill); "
        f"retries {len(retries)}; dead letters {len(dead)}; state misses {len(misses)}; "
        f"login_activity rows {len(rows)} ({len(set(rows))} distinct); inbox rows {len(records)}; "
        f"outbox unsent {unsent}; queues {depths}"
    )

    assert len(rows) == len(set(rows)) == EVENTS and set(rows) == expected  # none lost, none twice
    assert len(records) == EVENTS and set(records) == expected
    assert dead == [] and not any(depths.values()), depths
    assert unsent == 0
    assert misses == []
    assert resent <= duplicated  # every event relayed twice was delivered twice, and had one effect
    if KILLING:
        killed_for = min(elapsed, KILL_SECONDS)
        assert killer.kills >= min(3, int(killed_for / KILL_EVERY[1])), "the soak did not kill enough workers"
