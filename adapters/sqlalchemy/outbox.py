"""The transactional outbox and the subscribers' inbox, on SQLite and PostgreSQL.

The unit of work writes an envelope per event in the transaction of the change that raised it
(`write`): a rolled-back transaction leaves none. The relay claims unsent rows with a lease
(`Outbox.claim`: `FOR UPDATE SKIP LOCKED` on PostgreSQL, so relays running at once take disjoint
batches; on SQLite the same statement runs in a `BEGIN IMMEDIATE` transaction, which serialises
them), publishes them, and only then marks them sent. A relay that dies between the two leaves
its rows claimed until the lease ends; another relay sends them again, and the consumers' inbox
makes the copy harmless. On PostgreSQL the writing transaction also sends `NOTIFY outbox`, so a
waiting relay wakes at its commit rather than at its next poll.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import Connection, Engine, Row, and_, delete, func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError

from adapters.sqlalchemy.tables import inbox, outbox
from domain.messages import Envelope

CHANNEL = "outbox"

Now = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class AlreadyProcessed(Exception):
    """This subscriber has already processed this event: its writes were rolled back."""


def write(connection: Connection, envelopes: Sequence[Envelope], now: datetime) -> None:
    """Add the envelopes to the outbox, in the caller's transaction."""
    if not envelopes:
        return
    connection.execute(
        insert(outbox),
        [
            {
                "event_id": envelope.event_id,
                "type": envelope.type,
                "version": envelope.version,
                "occurred_at": envelope.occurred_at,
                "correlation_id": envelope.correlation_id,
                "causation_id": envelope.causation_id,
                "locale": envelope.locale,
                "payload": envelope.payload,
                "created_at": now,
                "attempts": 0,
            }
            for envelope in envelopes
        ],
    )
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"NOTIFY {CHANNEL}"))  # delivered when the transaction commits


def record_processed(connection: Connection, event_id: UUID, subscriber: str, now: datetime) -> None:
    """Mark the event processed by the subscriber, in the caller's transaction; raises
    AlreadyProcessed when it was (another delivery got there first)."""
    try:  # no savepoint: a refusal rolls the whole transaction back, as it must
        connection.execute(insert(inbox).values(event_id=event_id, subscriber=subscriber, processed_at=now))
    except IntegrityError as error:
        raise AlreadyProcessed(f"{subscriber} has processed event {event_id}") from error


@dataclass(frozen=True)
class Unsent:
    """A claimed outbox row."""

    position: int
    envelope: Envelope
    attempts: int


class Outbox:
    """The relay's side of the outbox."""

    def __init__(self, engine: Engine, *, now: Now = _utcnow) -> None:
        self._engine = engine
        self._now = now

    def claim(self, limit: int, lease: float) -> list[Unsent]:
        """Up to `limit` unsent rows nobody else holds, oldest first, held for `lease` seconds."""
        now = self._now()
        free = or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until < now)
        candidates = (
            select(outbox.c.position)
            .where(outbox.c.sent_at.is_(None), free)
            .order_by(outbox.c.position)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        claim = (
            update(outbox)
            .where(outbox.c.position.in_(candidates.scalar_subquery()))
            .values(claimed_until=now + timedelta(seconds=lease), attempts=outbox.c.attempts + 1)
            .returning(*outbox.c)
        )
        with self._engine.begin() as connection:
            rows = connection.execute(claim).all()
        return sorted((_unsent(row) for row in rows), key=lambda unsent: unsent.position)

    def mark_sent(self, positions: Iterable[int]) -> None:
        positions = list(positions)
        if positions:
            with self._engine.begin() as connection:
                connection.execute(
                    update(outbox).where(outbox.c.position.in_(positions)).values(sent_at=self._now())
                )

    def release(self, positions: Iterable[int]) -> None:
        """Give rows back unsent (their publication failed): the next claim takes them again."""
        positions = list(positions)
        if positions:
            with self._engine.begin() as connection:
                connection.execute(
                    update(outbox)
                    .where(outbox.c.position.in_(positions), outbox.c.sent_at.is_(None))
                    .values(claimed_until=None)
                )

    def backlog(self) -> tuple[int, float]:
        """How many rows are unsent, and the age in seconds of the oldest (0 when none)."""
        with self._engine.connect() as connection:
            count, oldest = connection.execute(
                select(func.count(), func.min(outbox.c.created_at)).where(outbox.c.sent_at.is_(None))
            ).one()
        if oldest is None:
            return 0, 0.0
        if oldest.tzinfo is None:  # SQLite, through an aggregate: the column type is not applied
            oldest = datetime.fromisoformat(str(oldest)).replace(tzinfo=UTC)
        return count, max(0.0, (self._now() - oldest).total_seconds())

    def prune(self, older_than: timedelta) -> int:
        """Delete rows sent longer ago than `older_than`; how many."""
        cutoff = self._now() - older_than
        with self._engine.begin() as connection:
            result = connection.execute(
                delete(outbox).where(and_(outbox.c.sent_at.is_not(None), outbox.c.sent_at < cutoff))
            )
        return result.rowcount


def _unsent(row: Row) -> Unsent:
    envelope = Envelope(
        event_id=row.event_id,
        type=row.type,
        version=row.version,
        occurred_at=row.occurred_at,
        correlation_id=row.correlation_id,
        causation_id=row.causation_id,
        locale=row.locale,
        payload=row.payload,
    )
    return Unsent(row.position, envelope, row.attempts)


class Inbox:
    """A worker's look at the inbox, and its record for subscribers that write nothing else."""

    def __init__(self, engine: Engine, *, now: Now = _utcnow) -> None:
        self._engine = engine
        self._now = now

    def seen(self, event_id: UUID, subscriber: str) -> bool:
        query = select(inbox.c.event_id).where(inbox.c.event_id == event_id, inbox.c.subscriber == subscriber)
        with self._engine.connect() as connection:
            return connection.execute(query).first() is not None

    def mark(self, event_id: UUID, subscriber: str) -> bool:
        """Record the event processed; False when it already was."""
        try:
            with self._engine.begin() as connection:
                record_processed(connection, event_id, subscriber, self._now())
        except AlreadyProcessed:
            return False
        return True
