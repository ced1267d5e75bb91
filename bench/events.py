"""Benchmark: durable events on PostgreSQL and RabbitMQ, end to end and on the write path, in one run.

1. The cost of the outbox on the write path: the same write with durable events on (EVENTS_URL
   set: the unit of work also writes the event's `outbox` row and sends NOTIFY) and off, pairs
   interleaved (on/off, then off/on) so drift and noise hit both alike; no relay runs meanwhile.
   Two writes: `uow`, a unit of work that changes a user's initials and records UserUpdated
   (the smallest write that raises an event), and `UpdateUser`, the same change as a command
   through each app's message bus (two reads and the write, the session state and the read
   cache's invalidation in Redis). Per write: median, p99, and the ratio on/off. A third pair
   splits the outbox's own cost: a transaction with one outbox row, with its NOTIFY
   (adapters.sqlalchemy.outbox.write) and without (the same INSERT alone).
2. End-to-end latency: `user-service relay` and `user-service worker --subscriber
   auth.record_login_activity` run as subprocesses; UserLoggedIn events of logged-in users are
   written into the outbox (app.wiring.events.envelope, i.e. REGISTRY.wrap, and
   adapters.sqlalchemy.outbox.write), one per transaction, at a steady rate (--rate). Latency
   is the writer's commit to the worker's commit of the login_activity row, both on this
   process's clock: the commit's time when it returned, the worker's when the row's NOTIFY
   reaches a LISTEN here (a trigger of the benchmark's own on login_activity, in its schema,
   sends it; PostgreSQL delivers it at the commit). Its legs, from the outbox and inbox rows,
   stamped by the relay and the worker on the same host clock: commit -> claimed by the relay
   (`claimed_until` less the lease), claimed -> confirmed (`sent_at`, stamped once the broker
   confirmed, before the UPDATE that marks it), confirmed -> the inbox row's `processed_at`
   (delivery, then the worker's transaction up to its first statement, the inbox row; it can
   be below zero), processed_at -> visible (the subscriber's statements and the commit). Two
   baselines in the same run: one publish with confirms to a quorum queue alone, and
   Worker.handle of one event in this process, no broker. The CPU time the relay and the worker
   used, per event, is read from /proc.
3. Throughput: the same number of events written at once (transactions of 100), from the first
   write to the last row visible (the pipeline's events/s) and to the last `sent_at` (the
   relay's alone).

    .venv/bin/python bench/events.py [--events N] [--writes N] [--rate R] [--users N]
                                     [--prefetch N] [--smoke] [--json PATH]

The processes run as in production (APP_ENV=production, CACHE_URL=redis, MAIL_BACKEND=log).
PostgreSQL is --postgres-url (default TEST_POSTGRES_URL, else
postgresql+psycopg://root@127.0.0.1:5432/test), in a schema `bench_<random>` created, migrated
and dropped at the end; RabbitMQ is --amqp-url (default TEST_AMQP_URL, else
amqp://guest:guest@127.0.0.1:5672//), with EVENTS_PREFIX `bench.<random>.`, whose exchange and
queues are deleted at the end; Redis is --redis-url (default BENCH_REDIS_URL, else
redis://127.0.0.1:6379/12), its keys under `bench:<random>:`, deleted at the end. Everything
is cleaned up on Ctrl-C and SIGTERM as well. A server out of reach: exit 2 with its name.
--smoke (a few events and writes) only checks that everything works.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any
from uuid import UUID, uuid4

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import kombu  # noqa: E402
import psycopg  # noqa: E402
import redis  # noqa: E402
from sqlalchemy import Engine, create_engine, delete, func, insert, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.exc import SQLAlchemyError  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

from adapters.events import correlation  # noqa: E402
from adapters.events.registry import REGISTRY  # noqa: E402
from adapters.rabbitmq.messages import Delivery  # noqa: E402
from adapters.rabbitmq.publisher import RabbitPublisher  # noqa: E402
from adapters.rabbitmq.topology import Topology  # noqa: E402
from adapters.sqlalchemy import outbox as outbox_rows  # noqa: E402
from adapters.sqlalchemy.engine import make_engine  # noqa: E402
from adapters.sqlalchemy.migrate import upgrade  # noqa: E402
from adapters.sqlalchemy.tables import inbox, login_activity, outbox  # noqa: E402
from adapters.sqlalchemy.unit_of_work import SqlAlchemyUnitOfWork  # noqa: E402
from app import config  # noqa: E402
from app.events.processes import build_worker, topology  # noqa: E402
from app.events.relay import RelaySettings  # noqa: E402
from app.factory import create_app  # noqa: E402
from app.wiring.events import envelope  # noqa: E402
from domain.auth.commands import Login  # noqa: E402
from domain.auth.events import UserLoggedIn  # noqa: E402
from domain.messages import Envelope, Event  # noqa: E402
from domain.users.commands import RegisterUser, UpdateUser  # noqa: E402
from domain.users.events import UserUpdated  # noqa: E402
from ports.event_transport import Outgoing  # noqa: E402

BIN = Path(sys.executable).parent  # the virtualenv's bin: user-service
DEFAULT_POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://root@127.0.0.1:5432/test")
DEFAULT_AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
DEFAULT_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
SUBSCRIBER = "auth.record_login_activity"
PASSWORD = "Passw0rd!x"
BURST_BATCH = 100  # events per transaction in the burst
WARM_EVENTS = 20  # through the pipeline before the latency run (connections, the worker's slow start)
WARM_WRITES = 20  # pairs before the measured ones
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
LEASE = RelaySettings().lease  # what `user-service relay` claims with: claimed_until = claim + lease
SERVICE_ENV = {
    "APP_ENV": "production",
    "MAIL_BACKEND": "log",
    "ARGON2_TIME_COST": "1",
    "ARGON2_MEMORY_COST": "8",
    "ARGON2_PARALLELISM": "1",
    "LOG_LEVEL": "INFO",
}


class Unavailable(Exception):
    """A server the benchmark needs is out of reach; the message names it."""


class BenchFailed(Exception):
    """The pipeline did not deliver, or a process died; the message says what and shows its log."""


def progress(message: str) -> None:
    print(f"[events] {message}", file=sys.stderr, flush=True)


# --- statistics -------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest rank: the smallest value with at least p % of them at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass(frozen=True)
class Spread:
    p50: float
    p99: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(statistics.median(values), percentile(values, 99), max(values))


# --- servers ----------------------------------------------------------------------------------


def shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True) if "://" in url else url


def check_rabbitmq(url: str) -> str:
    """RabbitMQ's version; raises Unavailable when it does not answer."""
    connection = kombu.Connection(url, connect_timeout=3)
    try:
        connection.ensure_connection(max_retries=0, reraise_as_library_errors=False)
        version = connection.connection.server_properties.get("version", "?")
        return version.decode() if isinstance(version, bytes) else str(version)
    except Exception as error:
        where = url.split("@")[-1]
        raise Unavailable(f"RabbitMQ not reachable at {where} ({error!r}): start it or pass --amqp-url")
    finally:
        connection.release()


@contextlib.contextmanager
def redis_prefix(url: str) -> Iterator[str]:
    """A random key prefix on the Redis at `url`; its keys are deleted afterwards."""
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as error:
        client.close()
        raise Unavailable(f"Redis not reachable at {url} ({error}): start it or pass --redis-url")
    prefix = f"bench:{secrets.token_hex(4)}:"
    try:
        yield prefix
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
        progress(f"deleted {len(keys)} Redis keys under {prefix}")
        client.close()


@contextlib.contextmanager
def postgres_schema(server_url: str) -> Iterator[tuple[str, str]]:
    """A fresh schema `bench_<random>`, migrated; yields a URL selecting it (search_path) and the
    server's version; drops it (CASCADE) afterwards."""
    url = make_url(server_url).update_query_dict({"connect_timeout": "5"})
    schema = f"bench_{secrets.token_hex(6)}"
    admin = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            version = connection.execute(text("SHOW server_version")).scalar_one()
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except SQLAlchemyError as error:
        admin.dispose()
        raise Unavailable(
            f"PostgreSQL not usable at {shown(str(url))} ({error.__class__.__name__}: "
            f"{str(error).splitlines()[0]}): start it or pass --postgres-url"
        )
    try:
        selected = url.update_query_dict({"options": f"-csearch_path={schema}"})
        database_url = selected.render_as_string(hide_password=False)
        engine = make_engine(database_url)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
        yield database_url, version
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
        progress(f"dropped schema {schema}")


@contextlib.contextmanager
def broker_topology(env: dict[str, str]) -> Iterator[None]:
    """Deletes, at the end, the exchange and every queue the relay and the worker declare under
    the run's EVENTS_PREFIX (they declare the same layout: every worker subscriber's)."""
    try:
        yield
    finally:
        layout = topology(config.load(env))
        try:
            with kombu.Connection(env["EVENTS_URL"], connect_timeout=5) as connection:
                layout.delete(connection)
            progress(f"deleted the exchange and queues under {layout.prefix}")
        except Exception as error:  # reported: the operator deletes them by hand
            progress(f"could not delete the RabbitMQ topology under {layout.prefix}: {error!r}")


# --- relay and worker -------------------------------------------------------------------------


class Process:
    """`user-service <kind> [args]` with exactly `env` (plus PATH and this checkout on the Python
    path), in a session of its own (a Ctrl-C at the terminal reaches only this script, which stops
    it), its output in a log file."""

    def __init__(self, kind: str, env: dict[str, str], logs: Path, args: Sequence[str] = ()) -> None:
        self.kind = kind
        self.log = logs / f"{kind}.log"
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(BIN / "user-service"), kind, *args],
                env=environment,
                cwd=logs,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 30) -> str:
        return "\n".join(f"  {line}" for line in self.text().splitlines()[-lines:])

    def cpu_seconds(self) -> float:
        """User and system CPU time the process has used so far (Linux /proc; 0 elsewhere)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise BenchFailed(f"{self.kind} exited with {self.process.returncode}:\n{self.tail()}")

    def wait_for(self, marker: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while marker not in self.text():
            self.check_alive()
            if time.monotonic() > deadline:
                raise BenchFailed(
                    f"{self.kind} did not log {marker!r} in {READY_TIMEOUT:.0f} s:\n{self.tail()}"
                )
            time.sleep(0.05)

    def stop(self) -> int | None:
        """SIGTERM (the process finishes what it has in hand), then SIGKILL after a while."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            progress(f"{self.kind} did not stop in {STOP_TIMEOUT:.0f} s: killed")
            self.process.kill()
            self.process.wait()
            return None


@contextlib.contextmanager
def running(
    kind: str, env: dict[str, str], logs: Path, ready: str, args: Sequence[str] = ()
) -> Iterator[Process]:
    process = Process(kind, env, logs, args)
    try:
        process.wait_for(ready)
        progress(f"{kind} ready (pid {process.process.pid})")
        yield process
    finally:
        status = process.stop()
        if status not in (0, -signal.SIGTERM, None):  # -SIGTERM: stopped before its handler was set
            progress(f"{kind} exited with {status}:\n{process.tail()}")


# --- the write path ---------------------------------------------------------------------------


class NoBus:
    """Events published after the block go nowhere: `uow` measures the transaction only."""

    def publish(self, event: Event) -> None:
        pass


def initials(n: int) -> str:
    """A distinct pair of capital letters for consecutive n (26 x 26 of them)."""
    return chr(65 + n // 26 % 26) + chr(65 + n % 26)


def uow_write(make_uow: Callable[[], SqlAlchemyUnitOfWork], user_id: UUID, value: str) -> None:
    with make_uow() as uow:
        user = uow.users.get(user_id, lock=True)
        assert user is not None
        user.update(initials=value)
        user.record(UserUpdated(user_id=user.id, email=user.email, occurred_at=datetime.now(UTC)))
        uow.commit()


@dataclass(frozen=True)
class WriteCost:
    write: str
    pairs: int
    on_p50_ms: float
    on_p99_ms: float
    off_p50_ms: float
    off_p99_ms: float
    p50_ratio: float
    p99_ratio: float
    paired_diff_p50_ms: float  # median of (on - off) within each pair


def interleaved(
    name: str,
    on: Callable[[UUID, str], None],
    off: Callable[[UUID, str], None],
    users: list[UUID],
    pairs: int,
) -> WriteCost:
    """`pairs` writes with events on and as many off, in pairs whose order alternates; each
    write changes one user's initials to a value it does not have."""
    times: dict[str, list[float]] = {"on": [], "off": []}
    diffs = []
    sides = {"on": on, "off": off}
    for i in range(-WARM_WRITES, pairs):
        user = users[i % len(users)]
        took = {}
        for offset, side in enumerate(("on", "off") if i % 2 == 0 else ("off", "on")):
            start = time.perf_counter_ns()
            sides[side](user, initials(2 * i + offset))
            took[side] = (time.perf_counter_ns() - start) / 1e6
        if i >= 0:
            for side, ms in took.items():
                times[side].append(ms)
            diffs.append(took["on"] - took["off"])
    on_p50, off_p50 = statistics.median(times["on"]), statistics.median(times["off"])
    on_p99, off_p99 = percentile(times["on"], 99), percentile(times["off"], 99)
    return WriteCost(
        name,
        pairs,
        on_p50,
        on_p99,
        off_p50,
        off_p99,
        on_p50 / off_p50,
        on_p99 / off_p99,
        statistics.median(diffs),
    )


def outbox_insert(engine: Engine, notify: bool) -> None:
    """A transaction with one UserUpdated's outbox row: `outbox.write` (INSERT and NOTIFY), or
    the same INSERT alone."""
    event = UserUpdated(user_id=uuid4(), email="bench@example.com", occurred_at=datetime.now(UTC))
    with engine.begin() as connection:
        if notify:
            outbox_rows.write(connection, [envelope(event)], datetime.now(UTC))
        else:
            connection.execute(insert(outbox), [row(envelope(event), datetime.now(UTC))])


def row(sent: Envelope, now: datetime) -> dict[str, Any]:
    """The outbox row `outbox.write` inserts for `sent`."""
    fields = ("event_id", "type", "version", "occurred_at", "correlation_id", "causation_id", "locale")
    return {
        **{name: getattr(sent, name) for name in fields},
        "payload": sent.payload,
        "created_at": now,
        "attempts": 0,
    }


# --- events through the pipeline ---------------------------------------------------------------


def login_event(user_id: UUID) -> UserLoggedIn:
    return UserLoggedIn(
        user_id=user_id,
        session_id=uuid4(),
        kind="login",
        client_address="127.0.0.1",
        user_agent="bench/events.py",
        occurred_at=datetime.now(UTC),
    )


def write_events(engine: Engine, events: Sequence[UserLoggedIn]) -> datetime:
    """One transaction with the events' outbox rows (and its NOTIFY); when the commit returned."""
    with correlation.use(correlation.new_id()), engine.begin() as connection:
        envelopes = [envelope(event) for event in events]
        outbox_rows.write(connection, envelopes, datetime.now(UTC))
    return datetime.now(UTC)


class Visibility:
    """When each login_activity row became visible, on this process's clock: a trigger of the
    benchmark's own (in its schema, dropped with it) NOTIFYs the row's id, which PostgreSQL
    delivers at the worker's commit, and a thread here LISTENs. The commit's time is taken on
    the same clock, so commit -> visible needs no other process's clock, and nothing polls."""

    def __init__(self, engine: Engine) -> None:
        self.channel = f"bench_activity_{secrets.token_hex(4)}"
        with engine.begin() as connection:
            connection.execute(
                text(
                    "CREATE FUNCTION bench_notify_activity() RETURNS trigger LANGUAGE plpgsql AS "
                    f"$$ BEGIN PERFORM pg_notify('{self.channel}', NEW.id::text); RETURN NEW; END $$"
                )
            )
            connection.execute(
                text(
                    "CREATE TRIGGER bench_activity_visible AFTER INSERT ON login_activity "
                    "FOR EACH ROW EXECUTE FUNCTION bench_notify_activity()"
                )
            )
        self._conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.seen: dict[UUID, datetime] = {}
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._failed: list[BaseException] = []
        self._thread = threading.Thread(target=self._listen, name="visibility", daemon=True)
        self._thread.start()
        if not self._listening.wait(10):
            raise BenchFailed(f"could not LISTEN {self.channel}: {self._failed!r}")

    def _listen(self) -> None:
        try:
            with psycopg.connect(self._conninfo, autocommit=True) as connection:
                connection.execute(f"LISTEN {self.channel}")
                self._listening.set()
                while not self._stop.is_set():
                    for notify in connection.notifies(timeout=0.5):
                        self.seen[UUID(notify.payload)] = datetime.now(UTC)
        except BaseException as error:  # reported by wait()
            self._failed.append(error)

    def wait(self, ids: Sequence[UUID], processes: Sequence[Process]) -> dict[UUID, datetime]:
        """Until every id's row is visible; their times."""
        deadline = time.monotonic() + 60 + len(ids) / 20
        while (done := sum(1 for id_ in ids if id_ in self.seen)) < len(ids):
            for process in processes:
                process.check_alive()
            if self._failed or not self._thread.is_alive():
                raise BenchFailed(f"the LISTEN connection failed: {self._failed!r}")
            if time.monotonic() > deadline:
                logs = "\n".join(f"{p.kind}:\n{p.tail()}" for p in processes)
                raise BenchFailed(f"{done} of {len(ids)} events processed after the deadline\n{logs}")
            time.sleep(0.05)
        return {id_: self.seen[id_] for id_ in ids}

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


@dataclass(frozen=True)
class Trace:
    committed: datetime
    claimed: datetime
    sent: datetime
    processed: datetime
    visible: datetime
    attempts: int


def traces(engine: Engine, committed: dict[UUID, datetime], visible: dict[UUID, datetime]) -> list[Trace]:
    query = (
        select(
            outbox.c.event_id,
            outbox.c.claimed_until,
            outbox.c.sent_at,
            outbox.c.attempts,
            inbox.c.processed_at,
        )
        .join(inbox, inbox.c.event_id == outbox.c.event_id)
        .where(inbox.c.subscriber == SUBSCRIBER, outbox.c.event_id.in_(list(committed)))
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
        recorded = connection.execute(
            select(func.count()).where(login_activity.c.id.in_(list(committed)))
        ).scalar_one()
    if len(rows) != len(committed) or recorded != len(committed):
        raise BenchFailed(f"{len(committed)} events written, {len(rows)} traced, {recorded} activity rows")
    lease = timedelta(seconds=LEASE)
    return [
        Trace(
            committed[row.event_id],
            row.claimed_until - lease,
            row.sent_at,
            row.processed_at,
            visible[row.event_id],
            row.attempts,
        )
        for row in rows
    ]


class CpuTime:
    """The processes' CPU time from now on."""

    def __init__(self, processes: Sequence[Process]) -> None:
        self._processes = processes
        self._start = {p.kind: p.cpu_seconds() for p in processes}

    def per_event(self, events: int) -> dict[str, float]:
        """Milliseconds of CPU per event each process used since it was made."""
        return {p.kind: (p.cpu_seconds() - self._start[p.kind]) * 1000 / events for p in self._processes}


def ms(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() * 1000


@dataclass(frozen=True)
class Latency:
    events: int
    rate: float  # events/s asked for
    achieved_rate: float
    end_to_end_ms: Spread  # commit -> the activity row visible (the worker's commit)
    to_claim_ms: Spread  # commit -> the relay's claim
    publish_ms: Spread  # claim -> confirmed (sent_at)
    to_processed_ms: Spread  # confirmed -> the inbox row's processed_at (may be < 0)
    worker_transaction_ms: Spread  # processed_at -> visible
    to_processed_at_ms: Spread  # commit -> processed_at, the brief's first measure
    redelivered: int  # outbox rows claimed more than once
    cpu_ms_per_event: dict[str, float]  # relay's and worker's CPU time over the events


def steady(
    engine: Engine,
    visibility: Visibility,
    users: list[UUID],
    count: int,
    rate: float,
    processes: Sequence[Process],
) -> Latency:
    committed: dict[UUID, datetime] = {}
    period = 1 / rate
    cpu = CpuTime(processes)
    started = next_at = time.monotonic()
    for i in range(count):
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        event = login_event(users[i % len(users)])
        committed[event.event_id] = write_events(engine, [event])
        next_at = max(next_at + period, time.monotonic())  # late: no burst to catch up
    achieved = count / (time.monotonic() - started)
    found = traces(engine, committed, visibility.wait(list(committed), processes))
    return Latency(
        count,
        rate,
        achieved,
        Spread.of([ms(t.visible, t.committed) for t in found]),
        Spread.of([ms(t.claimed, t.committed) for t in found]),
        Spread.of([ms(t.sent, t.claimed) for t in found]),
        Spread.of([ms(t.processed, t.sent) for t in found]),
        Spread.of([ms(t.visible, t.processed) for t in found]),
        Spread.of([ms(t.processed, t.committed) for t in found]),
        sum(1 for t in found if t.attempts > 1),
        cpu.per_event(count),
    )


@dataclass(frozen=True)
class Throughput:
    events: int
    write_s: float  # writing the burst
    relay_events_per_s: float  # first write -> last marked sent
    events_per_s: float  # first write -> last activity row visible
    end_to_end_ms: Spread  # each event's commit -> visible, queueing included
    redelivered: int
    cpu_ms_per_event: dict[str, float]


def burst(
    engine: Engine, visibility: Visibility, users: list[UUID], count: int, processes: Sequence[Process]
) -> Throughput:
    committed: dict[UUID, datetime] = {}
    cpu = CpuTime(processes)
    started = datetime.now(UTC)
    for first in range(0, count, BURST_BATCH):
        events = [login_event(users[i % len(users)]) for i in range(first, min(count, first + BURST_BATCH))]
        at = write_events(engine, events)
        committed.update((event.event_id, at) for event in events)
    written = datetime.now(UTC)
    found = traces(engine, committed, visibility.wait(list(committed), processes))
    last_sent = max(t.sent for t in found)
    last_visible = max(t.visible for t in found)
    return Throughput(
        count,
        (written - started).total_seconds(),
        count / (last_sent - started).total_seconds(),
        count / (last_visible - started).total_seconds(),
        Spread.of([ms(t.visible, t.committed) for t in found]),
        sum(1 for t in found if t.attempts > 1),
        cpu.per_event(count),
    )


def confirm_baseline(url: str, prefix: str, count: int) -> Spread:
    """Milliseconds to publish one message with confirms to a quorum queue alone (the relay's
    publisher, on an exchange and queue of their own under `prefix`, deleted afterwards): what
    the broker's half of the relay's leg costs on this machine, measured in the same run."""
    layout = Topology(prefix=prefix, bindings={"bench.confirm": ("BenchPing",)})
    publisher = RabbitPublisher(url, layout)
    times = []
    try:
        for i in range(-10, count):
            message = Outgoing(event_id=str(uuid4()), type="BenchPing", correlation_id="bench", body=b"{}")
            start = time.perf_counter_ns()
            publisher.publish([message])
            if i >= 0:
                times.append((time.perf_counter_ns() - start) / 1e6)
    finally:
        publisher.close()
        with kombu.Connection(url, connect_timeout=5) as connection:
            layout.delete(connection)
    return Spread.of(times)


@dataclass(frozen=True)
class Handling:
    events: int
    handle_ms: Spread  # Worker.handle of one event, start to return (committed)


def handling_baseline(container: Any, users: list[UUID], count: int) -> Handling:
    """The worker's handling of one event alone, in this process (`build_worker` over the
    durable container, as `user-service worker` builds it), with no broker in between."""
    worker = build_worker(container, [SUBSCRIBER])
    took = []
    for i in range(-10, count):
        event = login_event(users[i % len(users)])
        sent = envelope(event)
        delivery = Delivery(
            subscriber=SUBSCRIBER,
            body=REGISTRY.dumps(sent),
            message_id=str(event.event_id),
            correlation_id=sent.correlation_id,
            type=sent.type,
            attempt=1,
            redelivered=False,
        )
        start = time.perf_counter_ns()
        worker.handle(delivery)
        if i >= 0:
            took.append((time.perf_counter_ns() - start) / 1e6)
    return Handling(count, Spread.of(took))


# --- the run ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    events: int
    writes: int
    rate: float
    users: int
    prefetch: int | None
    postgres_url: str
    amqp_url: str
    redis_url: str


def environment(database_url: str, options: Options, cache_prefix: str, instance: Path) -> dict[str, str]:
    """The settings of every process, durable events on (EVENTS_URL set)."""
    return {
        **SERVICE_ENV,
        "SECRET_KEY": secrets.token_urlsafe(32),
        "INSTANCE_PATH": str(instance),
        "DATABASE_URL": database_url,
        "CACHE_URL": options.redis_url,
        "CACHE_PREFIX": cache_prefix,
        "EVENTS_URL": options.amqp_url,
        "EVENTS_PREFIX": f"bench.{secrets.token_hex(4)}.",
        **({"EVENTS_PREFETCH": str(options.prefetch)} if options.prefetch else {}),
    }


def sign_up(bus: Any, count: int) -> list[UUID]:
    """`count` users, each logged in once (its session state is then in Redis, as after a real
    login: the worker's subscriber reads it)."""
    tag = secrets.token_hex(3)
    users = []
    for i in range(count):
        email = f"bench-{tag}-{i}@example.com"
        user = bus.handle(RegisterUser(email=email, initials="AA", password=PASSWORD))
        bus.handle(Login(email=email, password=PASSWORD, client_address="127.0.0.1"))
        users.append(user.id)
    return users


def run(options: Options, workdir: Path, smoke: bool) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        rabbitmq = check_rabbitmq(options.amqp_url)
        cache_prefix = stack.enter_context(redis_prefix(options.redis_url))
        database_url, postgres = stack.enter_context(postgres_schema(options.postgres_url))
        progress(f"PostgreSQL {postgres}, RabbitMQ {rabbitmq}; schema migrated")
        env = environment(database_url, options, cache_prefix, workdir / "instance")
        stack.enter_context(broker_topology(env))

        on_app = create_app(env)
        off_app = create_app({**env, "EVENTS_URL": ""})
        on_container, off_container = on_app.extensions["container"], off_app.extensions["container"]
        stack.callback(on_container.storage.engine().dispose)
        stack.callback(off_container.storage.engine().dispose)
        engine = make_engine(database_url)
        stack.callback(engine.dispose)

        progress(f"signing up {options.users} users")
        users = sign_up(off_container.bus(), options.users)

        progress(f"write path: {options.writes} pairs per write, events on/off interleaved")
        with_events = lambda: SqlAlchemyUnitOfWork(engine, NoBus(), envelopes=envelope)  # noqa: E731
        without = lambda: SqlAlchemyUnitOfWork(engine, NoBus())  # noqa: E731
        on_bus, off_bus = on_container.bus(), off_container.bus()
        costs = [
            interleaved(
                "uow",
                lambda user, value: uow_write(with_events, user, value),
                lambda user, value: uow_write(without, user, value),
                users,
                options.writes,
            ),
            interleaved(
                "UpdateUser",
                lambda user, value: on_bus.handle(UpdateUser(user_id=user, initials=value)),
                lambda user, value: off_bus.handle(UpdateUser(user_id=user, initials=value)),
                users,
                options.writes,
            ),
            interleaved(
                "outbox NOTIFY",
                lambda user, value: outbox_insert(engine, notify=True),
                lambda user, value: outbox_insert(engine, notify=False),
                users,
                options.writes,
            ),
        ]
        with engine.begin() as connection:  # the write path's UserUpdated rows: not for the relay
            dropped = connection.execute(delete(outbox)).rowcount
        progress(f"deleted the write path's {dropped} outbox rows")

        visibility = Visibility(engine)
        stack.callback(visibility.close)
        logs = workdir / "logs"
        logs.mkdir()
        relay = stack.enter_context(running("relay", env, logs, "operation=relay.start"))
        worker = stack.enter_context(
            running("worker", env, logs, "operation=events.consume", ["--subscriber", SUBSCRIBER])
        )
        processes = [relay, worker]

        warm = steady(engine, visibility, users, WARM_EVENTS, options.rate, processes)
        progress(f"warm-up: {WARM_EVENTS} events, end to end p50 {warm.end_to_end_ms.p50:.1f} ms")
        confirms = min(options.events, 200)
        progress(f"baseline: {confirms} publishes with confirms, alone")
        confirm = confirm_baseline(options.amqp_url, f"{env['EVENTS_PREFIX']}confirm.", confirms)
        progress(f"baseline: {confirms} events handled by a worker in this process, alone")
        handling = handling_baseline(on_container, users, confirms)
        progress(f"latency: {options.events} events at {options.rate:g}/s")
        latency = steady(engine, visibility, users, options.events, options.rate, processes)
        progress(f"throughput: {options.events} events at once")
        throughput = burst(engine, visibility, users, options.events, processes)
        duplicates = worker.text().count("operation=worker.duplicate")
        warnings = [
            line
            for p in processes
            for line in p.text().splitlines()
            if " WARNING " in line or " ERROR " in line
        ]
    settings = config.load(env)["events"]
    return {
        "context": {
            "cpus": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(),
            "tree": tree(),
            "postgresql": postgres,
            "rabbitmq": rabbitmq,
            "prefetch": settings["prefetch"],
            "relay_batch": RelaySettings().batch,
            "users": options.users,
            "smoke": smoke,
        },
        "write_path": [asdict(cost) for cost in costs],
        "publish_confirm_ms": asdict(confirm),
        "worker_handle": asdict(handling),
        "latency": asdict(latency),
        "throughput": asdict(throughput),
        "worker_duplicates": duplicates,
        "warnings": warnings[:20],
    }


# --- report -----------------------------------------------------------------------------------


def tree() -> str:
    """The commit measured, and whether tracked files differed from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return "?"
    return f"{head or '?'}" + (f" with {len(changed)} changed files" if changed else "")


def cpu(phase: dict[str, Any]) -> str:
    return ", ".join(f"{kind} {value:.2f} ms" for kind, value in phase["cpu_ms_per_event"].items())


def report(figures: dict[str, Any]) -> None:
    c = figures["context"]
    load = ", ".join(f"{x:.2f}" for x in c["load_average"])
    print(
        f"tree {c['tree']}; machine: {c['cpus']} CPUs, load average {load}; Python {c['python']}; "
        f"PostgreSQL {c['postgresql']}; RabbitMQ {c['rabbitmq']}; "
        f"relay batch {c['relay_batch']}, worker prefetch {c['prefetch']}"
    )
    print()
    print(
        f"{'write path, ms':<16}{'pairs':>7}{'on p50':>9}{'off p50':>9}{'ratio':>7}"
        f"{'on p99':>9}{'off p99':>9}{'ratio':>7}{'on-off p50':>12}"
    )
    for w in figures["write_path"]:
        print(
            f"{w['write']:<16}{w['pairs']:>7}{w['on_p50_ms']:>9.2f}{w['off_p50_ms']:>9.2f}{w['p50_ratio']:>7.2f}"
            f"{w['on_p99_ms']:>9.2f}{w['off_p99_ms']:>9.2f}{w['p99_ratio']:>7.2f}{w['paired_diff_p50_ms']:>12.2f}"
        )
    print("(on: EVENTS_URL set, the outbox row and NOTIFY in the transaction; outbox NOTIFY: a")
    print(" transaction with one outbox row, on: with its NOTIFY, off: without; on-off: median of")
    print(" the differences within each pair)")
    print()
    lat = figures["latency"]
    print(
        f"latency, {lat['events']} events at {lat['rate']:g}/s "
        f"(achieved {lat['achieved_rate']:.1f}/s), one per transaction"
    )
    print(f"{'ms':<28}{'p50':>9}{'p99':>9}{'max':>9}")
    rows = [
        ("commit -> visible", lat["end_to_end_ms"], "the worker's commit"),
        ("  commit -> relay claim", lat["to_claim_ms"], ""),
        ("  claim -> confirmed", lat["publish_ms"], "sent_at"),
        ("  confirmed -> processed_at", lat["to_processed_ms"], "inbox row"),
        ("  processed_at -> visible", lat["worker_transaction_ms"], ""),
        ("commit -> processed_at", lat["to_processed_at_ms"], ""),
        ("publish + confirm alone", figures["publish_confirm_ms"], "baseline"),
        ("Worker.handle alone", figures["worker_handle"]["handle_ms"], "baseline"),
    ]
    for label, s, note in rows:
        print(
            f"{label:<28}{s['p50']:>9.2f}{s['p99']:>9.2f}{s['max']:>9.2f}" + (f"  ({note})" if note else "")
        )
    relay_leg = lat["publish_ms"]["p50"] / figures["publish_confirm_ms"]["p50"]
    worker_leg = lat["to_processed_ms"]["p50"] + lat["worker_transaction_ms"]["p50"]
    worker_leg /= figures["worker_handle"]["handle_ms"]["p50"]
    print(f"p50 ratios: claim -> confirmed / publish alone {relay_leg:.2f}; ", end="")
    print(f"confirmed -> visible / handle alone {worker_leg:.2f}")
    print(f"CPU per event: {cpu(lat)}")
    print()
    th = figures["throughput"]
    s = th["end_to_end_ms"]
    print(
        f"throughput, {th['events']} events written at once "
        f"({BURST_BATCH} per transaction, in {th['write_s'] * 1000:.0f} ms)"
    )
    print(f"  relay      {th['relay_events_per_s']:>9.0f} events/s  (first write -> last marked sent)")
    print(f"  end to end {th['events_per_s']:>9.0f} events/s  (first write -> last visible)")
    print(
        f"  commit -> visible under the burst: "
        f"p50 {s['p50']:.0f} ms, p99 {s['p99']:.0f} ms, max {s['max']:.0f} ms"
    )
    print(f"  CPU per event: {cpu(th)}")
    redelivered = lat["redelivered"] + th["redelivered"]
    print(
        f"\nrows claimed twice: {redelivered}; duplicates the worker skipped: {figures['worker_duplicates']}"
    )
    if figures["warnings"]:
        print("warnings and errors logged by the relay or the worker:")
        for line in figures["warnings"]:
            print(f"  {line}")


# --- main -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--events", type=int, default=1000, help="events for latency, and again for throughput (1000)"
    )
    parser.add_argument("--writes", type=int, default=1000, help="on/off pairs per write measured (1000)")
    parser.add_argument("--rate", type=float, default=50.0, help="events/s of the latency run (50)")
    parser.add_argument("--users", type=int, default=20, help="users the events and writes are about (20)")
    parser.add_argument("--prefetch", type=int, help="EVENTS_PREFETCH of the worker (its default: 16)")
    parser.add_argument("--smoke", action="store_true", help="a few events and writes: checks it works")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON to PATH")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="default TEST_POSTGRES_URL")
    parser.add_argument("--amqp-url", default=DEFAULT_AMQP_URL, help="default TEST_AMQP_URL")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help=f"default {DEFAULT_REDIS_URL}")
    args = parser.parse_args(argv)
    if args.smoke:
        args.events, args.writes, args.users = 20, 20, 3
    if args.events < 1 or args.writes < 1 or args.users < 1 or args.rate <= 0 or (args.prefetch or 1) < 1:
        parser.error("--events, --writes, --users and --prefetch must be >= 1 and --rate > 0")
    return args


def terminate(signum: int, frame: FrameType | None) -> None:
    """SIGTERM unwinds like Ctrl-C: the processes are stopped, the schema, queues and keys deleted."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, terminate)
    options = Options(
        args.events,
        args.writes,
        args.rate,
        args.users,
        args.prefetch,
        args.postgres_url,
        args.amqp_url,
        args.redis_url,
    )
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-events-") as workdir:
            figures = run(options, Path(workdir), args.smoke)
    except Unavailable as error:
        print(f"bench/events.py: {error}", file=sys.stderr)
        return 2
    except BenchFailed as error:
        print(f"bench/events.py FAILED: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        progress("interrupted; processes stopped, schema, queues and keys deleted")
        return 130
    figures["seconds"] = round(time.perf_counter() - started, 1)
    report(figures)
    print(f"\n{figures['seconds']:.1f} s")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
