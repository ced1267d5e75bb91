# Over 200 lines: the unit of work, and the shared reads its read-only form joins, belong together.
"""The unit of work over one SQLAlchemy connection and transaction."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Self
from uuid import UUID

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from adapters.sqlalchemy import outbox
from adapters.sqlalchemy.engine import READ_ONLY, SQLITE_BEGIN
from adapters.sqlalchemy.sessions import SqlAlchemyLoginActivityRepository, SqlAlchemySessionRepository
from adapters.sqlalchemy.state_sources import SqlAlchemyUserStateSourceRepository
from adapters.sqlalchemy.subscriptions import SqlAlchemySubscriptionRepository
from adapters.sqlalchemy.tables import EMAIL_UNIQUE, PAYMENT_REFERENCE_UNIQUE
from adapters.sqlalchemy.tokens import SqlAlchemyAccountTokenRepository
from adapters.sqlalchemy.users import SqlAlchemyUserRepository
from domain.errors import AlreadyExists, ConcurrentUpdate
from domain.messages import Envelope, Event
from ports.event_bus import EventBus

RETRYABLE = {"40P01", "40001"}  # deadlock_detected, serialization_failure

# This thread's shared reads: the engine, the connection once a unit of work opened it, and
# whether a unit of work is using it now.
_held = threading.local()


@contextmanager
def shared_reads(engine: Engine) -> Iterator[None]:
    """Read-only units of work on `engine` entered one after another on this thread inside the
    block share one pooled connection: the first checks it out, the block's end gives it back. A
    request that reads twice (its session state, then the user it answers with) pays for one
    checkout and its pre-ping. Each unit of work still has its own transaction, so each reads
    what committed before it began (a read after the cache's tag-version snapshot must see every
    write that snapshot missed). Nothing is opened unless a unit of work reads; nested blocks
    join the outer one; a unit of work entered while another is open, or one that writes, has
    a connection of its own."""
    if getattr(_held, "engine", None) is not None:
        yield
        return
    _held.engine, _held.connection, _held.busy = engine, None, False
    try:
        yield
    finally:
        connection, _held.engine, _held.connection = _held.connection, None, None
        if connection is not None:
            connection.close()


class SqlAlchemyUnitOfWork:
    """One connection and one transaction per `with` block, begun on entry (on SQLite that
    takes the write lock: see `engine.make_engine`). `commit()` writes the tracked user changes
    and commits; the events it collected (the aggregates' and the recorded ones) are published
    on leaving the block, once the connection is closed (the port's publish rule).

    With `envelopes` (durable events), `commit()` also writes each event's envelope to the
    outbox in the same transaction. With `inbox` (an event id and a subscriber: a worker running
    that subscriber), the event is recorded processed as the transaction's first statement and
    committed with the subscriber's writes; entering raises AlreadyProcessed, writing nothing,
    when another delivery of it got there first. First, so that a copy delivered while the
    first is still at work waits on the inbox's key and then finds it taken, before it has
    written anything that could collide with the first copy's writes.

    A read-only unit of work inside `shared_reads` shares that block's connection and
    transaction instead of opening its own."""

    def __init__(
        self,
        engine: Engine,
        bus: EventBus,
        read_only: bool = False,
        *,
        envelopes: Callable[[Event], Envelope] | None = None,
        inbox: tuple[UUID, str] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._engine = engine
        self._bus = bus
        self._envelopes = envelopes
        self._inbox = inbox
        self._now = now
        self.inbox_recorded = False
        self._options = _read_options(engine) if read_only else {}
        self._read_only = read_only

    def __enter__(self) -> Self:
        self._shared = self._read_only and getattr(_held, "engine", None) is self._engine and not _held.busy
        held = _held.connection if self._shared else None
        self._connection: Connection = held or self._engine.connect().execution_options(**self._options)
        try:
            self._connection.begin()
        except BaseException:
            if held is not None:
                _held.connection = None  # not shared on: the next read opens its own
            self._connection.close()
            raise
        if self._shared:
            _held.connection, _held.busy = self._connection, True
        self.users = SqlAlchemyUserRepository(self._connection)
        self.tokens = SqlAlchemyAccountTokenRepository(self._connection)
        self.sessions = SqlAlchemySessionRepository(self._connection)
        self.activity = SqlAlchemyLoginActivityRepository(self._connection)
        self.subscriptions = SqlAlchemySubscriptionRepository(self._connection)
        self.state_sources = SqlAlchemyUserStateSourceRepository(self._connection, self.users.tracker)
        self._committed = False
        self._recorded: list[Event] = []  # since the last commit
        self._outgoing: list[Event] = []  # committed: published on leaving the block
        self._inbox_written = False  # in the transaction under way
        try:
            self._record_processed()
        except BaseException:
            self._connection.close()
            raise
        return self

    def __exit__(self, exc_type: object, error: BaseException | None, traceback: object) -> None:
        if self._shared:
            _held.busy = False
            if error is None:  # the transaction ends; the connection stays for the next read
                self.rollback()
                return
            _held.connection = None  # after a failure it is not shared on: the next read opens its own
        try:
            if not self._committed:
                self.rollback()
        finally:
            self._connection.close()  # also rolls back anything begun after commit
        # After the close: on SQLite a consumer's own unit of work needs the write lock.
        outgoing, self._outgoing = self._outgoing, []
        for event in outgoing:
            self._bus.publish(event)
        if isinstance(error, DBAPIError) and getattr(error.orig, "sqlstate", None) in RETRYABLE:
            # PostgreSQL chose this transaction as a deadlock victim (or could not serialise
            # it): the client's answer is the one for any lost race, "read again and retry".
            raise ConcurrentUpdate() from error

    def commit(self) -> None:
        try:
            self.subscriptions.flush()
            self.users.flush()
            events = [*self._recorded, *self.users.tracker.drain_events()]
            self._recorded = events  # a failed commit's rollback discards them
            self._record_processed()
            if self._envelopes is not None:
                outbox.write(self._connection, [self._envelopes(event) for event in events], self._now())
            self._connection.commit()
        except IntegrityError as error:
            if (translated := _domain_error(error)) is None:
                raise
            raise translated from error
        self._committed = True
        self.inbox_recorded = self.inbox_recorded or self._inbox_written
        self._inbox_written = False
        self._outgoing += events
        self._recorded = []

    def record(self, event: Event) -> None:
        # The aggregates' events recorded so far go first: the order of recording holds.
        self._recorded += [*self.users.tracker.drain_events(), event]

    def _record_processed(self) -> None:
        if self._inbox is not None and not self.inbox_recorded and not self._inbox_written:
            outbox.record_processed(self._connection, *self._inbox, self._now())
            self._inbox_written = True

    def rollback(self) -> None:
        self._connection.rollback()
        self._inbox_written = False
        self.users.tracker.clear()
        self.subscriptions.clear()
        self._recorded.clear()


def _read_options(engine: Engine) -> dict[str, object]:
    """How a read-only unit of work runs: it refuses INSERT, UPDATE and DELETE (READ_ONLY, see
    engine.make_engine), and takes no write lock. On SQLite it begins DEFERRED and, with WAL,
    never waits for a writer, every statement reading one snapshot. On PostgreSQL it runs in
    autocommit: at READ COMMITTED (which make_engine sets) each statement of a transaction sees
    its own snapshot anyway, so BEGIN and ROLLBACK would add two round trips and no consistency."""
    if engine.dialect.name == "postgresql":
        return {"isolation_level": "AUTOCOMMIT", READ_ONLY: True}
    return {SQLITE_BEGIN: "DEFERRED", READ_ONLY: True}


def _domain_error(error: IntegrityError) -> Exception | None:
    """Translate the constraint violations a correct caller can still meet."""
    # SQLite names the column, PostgreSQL the constraint.
    message = str(error.orig)
    if EMAIL_UNIQUE in message or "users.email" in message:
        return AlreadyExists()
    if PAYMENT_REFERENCE_UNIQUE in message or "payments.reference" in message:
        return AlreadyExists()
    # The user a row belongs to (a token's, a payment's subscription's) was deleted by a
    # transaction that committed first.
    if "foreign key" in message.lower():
        return ConcurrentUpdate()
    return None
