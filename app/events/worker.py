"""`user-service worker`: runs the subscribers that app.wiring.events places in workers.

Each message is an envelope (adapters.events): unwrapped into its event, its subscriber runs
with a unit of work of its own whose transaction begins by recording `(event id, subscriber)`
in the inbox and commits it with the subscriber's writes; the message is acknowledged only after
that commit. A redelivered or duplicated event whose subscriber already ran has no second
effect: the inbox is looked at first, and a copy that comes while the first is at work waits on
the inbox's key and then finds it taken (AlreadyProcessed), before it has written anything. A
subscriber that writes nothing to the database (a mail, a session-state group) is recorded
after it returned: a crash between the two runs it again (at least once).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any
from uuid import UUID

from prometheus_client import Counter

from adapters.events import correlation
from adapters.events.envelopes import EventRegistry
from adapters.rabbitmq.consumer import Delivery
from adapters.sqlalchemy.outage import DATABASE_ERRORS, DatabaseUnavailable, unavailable
from adapters.sqlalchemy.outbox import AlreadyProcessed, Inbox

log = logging.getLogger("user_service.events")

CONSUMED = Counter("events_consumed_total", "Events a worker subscriber processed.", ["subscriber"])
DUPLICATES = Counter(
    "events_duplicates_total", "Deliveries of events a subscriber had already processed.", ["subscriber"]
)
FAILED = Counter("events_failed_total", "Deliveries whose subscriber raised (retried later).", ["subscriber"])


class Worker:
    def __init__(
        self,
        registry: EventRegistry,
        subscribers: Mapping[str, Callable[..., Any]],
        uow_for: Callable[[UUID, str], Any],
        inbox: Inbox,
    ) -> None:
        """`subscribers`: by name, each taking the event and `uow=`; `uow_for(event id, name)`:
        the unit of work that records the inbox row at its first commit."""
        self._registry = registry
        self._subscribers = subscribers
        self._uow_for = uow_for
        self._inbox = inbox

    def handle(self, delivery: Delivery) -> None:
        """Run the delivery's subscriber once per event; raising means "retry later". The
        database out of reach, in the inbox or in the subscriber, raises DatabaseUnavailable:
        a dependency down, retried for as long as it lasts, never dead-lettered."""
        try:
            self._handle(delivery)
        except DATABASE_ERRORS as error:
            if unavailable(error):
                # Not str(error): it holds the statement and its parameters (emails among them).
                raise DatabaseUnavailable(f"the database is out of reach: {type(error).__name__}") from error
            raise

    def _handle(self, delivery: Delivery) -> None:
        name = delivery.subscriber
        envelope = self._registry.loads(delivery.body)
        event = self._registry.unwrap(envelope)
        if self._inbox.seen(envelope.event_id, name):
            return _duplicate(name, envelope.event_id)
        uow = self._uow_for(envelope.event_id, name)
        with correlation.use(envelope.correlation_id, str(envelope.event_id)):
            try:
                self._subscribers[name](event, uow=uow)
            except AlreadyProcessed:
                return _duplicate(name, envelope.event_id)
            except Exception:
                FAILED.labels(name).inc()
                raise
        if not uow.inbox_recorded and not self._inbox.mark(envelope.event_id, name):
            _duplicate(name, envelope.event_id)  # another delivery ran it meanwhile
        CONSUMED.labels(name).inc()
        log.debug(
            "operation=worker.done subscriber=%s event=%s type=%s attempt=%d",
            name,
            envelope.event_id,
            envelope.type,
            delivery.attempt,
        )


def _duplicate(subscriber: str, event_id: UUID) -> None:
    DUPLICATES.labels(subscriber).inc()
    log.info("operation=worker.duplicate subscriber=%s event=%s", subscriber, event_id)
