"""Where a message goes when its handler raised: the next retry queue, with `x-attempt` one more,
or, once the retries are used up or the error is one no retry can mend, the error queue with the
error in its headers."""

from __future__ import annotations

import logging

from prometheus_client import Counter

from adapters.rabbitmq.messages import (
    ATTEMPT,
    ERROR_MESSAGE,
    ERROR_MESSAGE_LENGTH,
    ERROR_TYPE,
    RETRY_COUNT,
    SUBSCRIBER,
    Delivery,
    Envelope,
    copy_to,
)
from adapters.rabbitmq.topology import Topology

log = logging.getLogger("user_service.events")

RETRIED = Counter("events_retried_total", "Deliveries sent to a retry queue.", ["subscriber"])
DEAD_LETTERED = Counter(
    "events_dead_lettered_total", "Deliveries sent to the error queue after their retries.", ["subscriber"]
)


def error_type(error: BaseException) -> str:
    kind = type(error)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def next_stop(
    topology: Topology,
    received: Delivery,
    error: Exception,
    *,
    permanent: tuple[type[Exception], ...] = (),
    transient: tuple[type[Exception], ...] = (),
) -> Envelope:
    """`transient`: errors that say a dependency is down, not that the message is bad (the
    cache unreachable): retried through the delays in turn and then after the last one, for as
    long as they last, never to the error queue. One DEBUG line each: the outage itself is told
    once, by the dependency's OutageLog."""
    subscriber, retries = received.subscriber, received.attempt - 1
    if isinstance(error, transient) and topology.retry_delays:
        retry = min(retries + 1, len(topology.retry_delays))
        log.debug(
            "operation=events.retry subscriber=%s type=%s id=%s attempt=%d delay=%ss error=%r: "
            "a dependency is down, retried until it answers",
            subscriber,
            received.type,
            received.message_id,
            received.attempt,
            topology.retry_delays[retry - 1],
            error,
        )
        RETRIED.labels(subscriber).inc()
        return copy_to(topology.retry_queue(subscriber, retry), received, {ATTEMPT: received.attempt + 1})
    if retries < len(topology.retry_delays) and not isinstance(error, permanent):
        log.warning(
            "operation=events.retry subscriber=%s type=%s id=%s attempt=%d delay=%ss error=%r",
            subscriber,
            received.type,
            received.message_id,
            received.attempt,
            topology.retry_delays[retries],
            error,
            exc_info=error,
        )
        queue = topology.retry_queue(subscriber, retries + 1)
        RETRIED.labels(subscriber).inc()
        return copy_to(queue, received, {ATTEMPT: received.attempt + 1})
    log.error(
        "operation=events.dead_letter subscriber=%s type=%s id=%s retries=%d error=%r",
        subscriber,
        received.type,
        received.message_id,
        retries,
        error,
        exc_info=error,
    )
    DEAD_LETTERED.labels(subscriber).inc()
    headers = {
        ERROR_TYPE: error_type(error),
        ERROR_MESSAGE: str(error)[:ERROR_MESSAGE_LENGTH],
        RETRY_COUNT: retries,
        SUBSCRIBER: subscriber,
    }
    return copy_to(topology.error_queue(subscriber), received, headers)
