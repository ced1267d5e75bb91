"""Where each event subscriber runs, and the envelopes of durable events.

Without EVENTS_URL every subscriber runs in-process (blinker), synchronously, when the unit of
work that raised the event leaves its block. With EVENTS_URL every event is also written to the
outbox and relayed to RabbitMQ, and each subscriber runs where this table says:

| subscriber                                | in-process | worker | why                            |
|-------------------------------------------|:----------:|:------:|--------------------------------|
| caching.invalidate_registered/updated/... |     x      |   x    | read-your-writes; the worker's |
|                                           |            |        | copy retries what failed       |
| auth.update_roles_state                   |     x      |   x    | new roles on the next request  |
| subscriptions.update_subscription_state   |     x      |   x    | entitlement at once            |
| subscriptions.activate_subscription       |     x      |   x    | entitlement at once            |
| auth.record_login_activity                |            |   x    | nothing reads it at once       |
| users.notify_email_changed, ..._password_ |            |   x    | a mail survives a crash        |

Those in both are idempotent: the state groups by their version's compare-and-set, a payment is
applied once, an invalidation twice is an invalidation. Their in-process run is a first attempt
(`FirstAttempt`): a failure there (the cache unreachable, say) is logged and counted, and the
worker's copy, from the outbox, retries it until it lands; nothing is kept in process memory.

A subscriber's name is its context and function: `auth.record_login_activity`; its queue is
EVENTS_PREFIX plus that name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import Counter

from adapters.events import correlation
from adapters.events.registry import REGISTRY
from domain.messages import Envelope, Event

IN_PROCESS, WORKER = "in-process", "worker"
BOTH = frozenset({IN_PROCESS, WORKER})

PLACEMENT: dict[str, frozenset[str]] = {
    "caching.invalidate_registered": BOTH,
    "caching.invalidate_updated": BOTH,
    "caching.invalidate_deleted": BOTH,
    "auth.update_roles_state": BOTH,
    "subscriptions.update_subscription_state": BOTH,
    "subscriptions.activate_subscription": BOTH,
    "auth.record_login_activity": frozenset({WORKER}),
    "users.notify_email_changed": frozenset({WORKER}),
    "users.notify_password_changed": frozenset({WORKER}),
}

Subscribers = Mapping[type, list[Callable]]

log = logging.getLogger("user_service.events")

DEFERRED = Counter(
    "events_deferred_total",
    "In-process first attempts that failed, left to the worker's durable copy.",
    ["subscriber"],
)


class FirstAttempt:
    """The in-process run of a subscriber that workers run too: it may fail without harm, since
    the worker's copy of the event retries it, so it is tried once and never raises."""

    def __init__(self, name: str, deliver: Callable[[Event], Any]) -> None:
        self.name, self._deliver = name, deliver

    def __call__(self, event: Event) -> None:
        try:
            self._deliver(event)
        except Exception as error:
            DEFERRED.labels(self.name).inc()
            log.warning(
                "operation=event.deferred subscriber=%s event=%s id=%s error=%r: "
                "the worker's durable copy retries it",
                self.name,
                type(event).__name__,
                event.event_id,
                error,
            )


def subscriber_name(subscriber: Callable) -> str:
    """`application.auth.activity.record_login_activity` -> `auth.record_login_activity`."""
    parts = subscriber.__module__.split(".")
    context = parts[1] if len(parts) > 1 else parts[0]
    return f"{context}.{subscriber.__name__}"


def placed(subscribers: Subscribers, where: str, durable: bool) -> dict[type, list[Callable]]:
    """The subscribers that run `where`: all of them in-process without a broker."""
    if not durable:
        return (
            {event: list(handlers) for event, handlers in subscribers.items()} if where == IN_PROCESS else {}
        )
    chosen: dict[type, list[Callable]] = {}
    for event, handlers in subscribers.items():
        for handler in handlers:
            if where in placement(handler):
                chosen.setdefault(event, []).append(handler)
    return chosen


def placement(subscriber: Callable) -> frozenset[str]:
    name = subscriber_name(subscriber)
    try:
        return PLACEMENT[name]
    except KeyError:
        raise LookupError(f"{name} is not in app.wiring.events.PLACEMENT: say where it runs") from None


def merged(*maps: Subscribers) -> dict[type, list[Callable]]:
    result: dict[type, list[Callable]] = {}
    for subscribers in maps:
        for event, handlers in subscribers.items():
            result.setdefault(event, []).extend(handlers)
    return result


def by_name(subscribers: Subscribers) -> dict[str, tuple[Callable, tuple[str, ...]]]:
    """Each worker subscriber by name, with the type names of the events it consumes."""
    named: dict[str, tuple[Callable, list[str]]] = {}
    for event, handlers in subscribers.items():
        for handler in handlers:
            named.setdefault(subscriber_name(handler), (handler, []))[1].append(event.__name__)
    return {name: (handler, tuple(types)) for name, (handler, types) in named.items()}


def envelope(event: Event) -> Envelope:
    """The event's envelope, stamped with the correlation of the request or message at hand."""
    correlation_id, causation_id = correlation.current()
    return REGISTRY.wrap(event, correlation_id=correlation_id, causation_id=causation_id)
