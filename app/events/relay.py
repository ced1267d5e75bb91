"""`user-service relay`: publishes the outbox to the broker (see adapters.sqlalchemy.outbox).

A loop: claim a batch with a lease, publish it with publisher confirms, mark it sent; an empty
outbox is waited on (PostgreSQL: woken by `NOTIFY outbox` at the writer's commit; a poll every
second in any case); a broker that fails is retried with a growing pause, the batch given back
unsent. Stopping (SIGTERM) lets the batch in hand finish: published and marked, or given back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from prometheus_client import Counter, Gauge

from adapters.outage import OutageLog
from adapters.sqlalchemy.outage import DATABASE_ERRORS, unavailable
from adapters.sqlalchemy.outbox import Outbox, Unsent
from domain.messages import Envelope
from ports.event_transport import EventPublisher, Outgoing, PublishFailed

log = logging.getLogger("user_service.events")

PUBLISHED = Counter("events_published_total", "Outbox rows the broker confirmed.", ["type"])
PUBLISH_FAILURES = Counter("events_publish_failures_total", "Batches the broker did not take.")
OUTBOX_DEPTH = Gauge("events_outbox_depth", "Outbox rows not yet sent.", multiprocess_mode="max")
OUTBOX_AGE = Gauge(
    "events_outbox_oldest_age_seconds", "Age of the oldest unsent outbox row.", multiprocess_mode="max"
)


@dataclass(frozen=True)
class RelaySettings:
    batch: int = 100
    lease: float = 30.0  # seconds a claimed batch is this relay's
    poll: float = 1.0  # seconds between looks at an outbox nobody notified about
    max_backoff: float = 30.0
    retention: timedelta = timedelta(hours=1)  # sent rows are kept this long, then pruned


def outgoing(envelope: Envelope, body: Callable[[Envelope], bytes]) -> Outgoing:
    return Outgoing(
        event_id=str(envelope.event_id),
        type=envelope.type,
        correlation_id=envelope.correlation_id,
        body=body(envelope),
    )


class Relay:
    def __init__(
        self,
        outbox: Outbox,
        publisher: EventPublisher,
        body: Callable[[Envelope], bytes],
        *,
        settings: RelaySettings = RelaySettings(),
        wait: Callable[[float], None] | None = None,
    ) -> None:
        self._outbox = outbox
        self._publisher = publisher
        self._body = body
        self._settings = settings
        self._wait = wait  # blocks until notified or the timeout; None: sleep
        self._outage = OutageLog(
            "broker", log, what="the event broker", effect="the outbox keeps the events until it answers"
        )
        self._database = OutageLog(
            "database", log, what="the database", effect="the relay claims again once it answers"
        )
        self._measured_at = self._pruned_at = float("-inf")

    @property
    def broker_answers(self) -> bool:
        """False from a failed publish until one is confirmed again: the relay's readiness."""
        return not self._outage.down

    def run_once(self) -> int:
        """Claim, publish and mark one batch; how many were sent. Raises PublishFailed after
        giving the batch back."""
        claimed = self._outbox.claim(self._settings.batch, self._settings.lease)
        if not claimed:
            return 0
        self._publish(claimed)
        return len(claimed)

    def run(self, stop: threading.Event) -> None:
        """Relays until `stop` is set. The broker or the database out of reach is waited for,
        with pauses doubling up to max_backoff: the events stay in the outbox meanwhile."""
        backoff = 0.0
        log.info("operation=relay.start batch=%d lease=%ss", self._settings.batch, self._settings.lease)
        while not stop.is_set():
            try:
                sent = self.run_once()
                self._housekeeping()
                self._database.answered()
                if sent:
                    self._outage.answered()
                backoff = 0.0
                # A part batch emptied the outbox as it stood. Woken by NOTIFY, wait at once (a
                # commit made meanwhile has queued its notification) rather than pay a claim that
                # finds nothing; polling, look again first.
                if not sent or (sent < self._settings.batch and self._wait is not None):
                    self._idle(stop)
                continue
            except PublishFailed as error:
                PUBLISH_FAILURES.inc()
                self._outage.failed("publish", error)
            except DATABASE_ERRORS as error:
                if not unavailable(error):
                    raise
                self._database.failed("claim", error)
            backoff = min(self._settings.max_backoff, max(0.5, backoff * 2))
            stop.wait(backoff)
        log.info("operation=relay.stop")

    def _publish(self, claimed: list[Unsent]) -> None:
        messages = [outgoing(unsent.envelope, self._body) for unsent in claimed]
        positions = [unsent.position for unsent in claimed]
        try:
            self._publisher.publish(messages)
        except PublishFailed:
            self._outbox.release(positions)
            raise
        self._outbox.mark_sent(positions)  # only once the broker has confirmed every one
        for message in messages:
            PUBLISHED.labels(message.type).inc()
        log.debug("operation=relay.sent count=%d last=%d", len(positions), positions[-1])

    def _idle(self, stop: threading.Event) -> None:
        if self._wait is None:
            stop.wait(self._settings.poll)
        else:
            self._wait(self._settings.poll)

    def _housekeeping(self) -> None:
        """The backlog gauges at most once a poll interval, pruning once a minute: not a query
        after every batch."""
        now = time.monotonic()
        if now - self._measured_at >= self._settings.poll:
            self._measured_at = now
            depth, age = self._outbox.backlog()
            OUTBOX_DEPTH.set(depth)
            OUTBOX_AGE.set(age)
        if now - self._pruned_at > 60:
            self._pruned_at = now
            if pruned := self._outbox.prune(self._settings.retention):
                log.info("operation=relay.pruned rows=%d", pruned)
