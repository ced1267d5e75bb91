"""An error queue, looked at and replayed (an operator's tools).

Its messages came either from the consumer, after the retries (headers x-error-type,
x-error-message, x-retry-count, x-subscriber), or from the queue itself, redelivered past its
delivery limit (headers x-death with reason `delivery_limit`, and x-first-death-*).
"""

from __future__ import annotations

import logging

from kombu import Message, Queue

from adapters.rabbitmq.confirms import ConfirmedChannel
from adapters.rabbitmq.connections import connect
from adapters.rabbitmq.messages import (
    ERROR_MESSAGE,
    ERROR_TYPE,
    RETRY_COUNT,
    Delivery,
    copy_to,
    delivery,
    raw,
)
from adapters.rabbitmq.topology import Topology

log = logging.getLogger("user_service.events")

BATCH = 100  # replayed per confirm round
TIMEOUT = 10.0  # seconds to connect and for a batch's confirms


def held(url: str, topology: Topology, subscriber: str) -> int | None:
    """How many messages the subscriber's error queue holds; None when there is no such queue
    (no worker or relay has declared it). Looks only: declares nothing."""
    with connect(url, timeout=TIMEOUT) as connection:
        try:
            with connection.channel() as channel:
                return int(
                    channel.queue_declare(topology.error_queue(subscriber), passive=True).message_count
                )
        except connection.channel_errors as error:
            if getattr(error, "code", None) == 404:  # NOT_FOUND
                return None
            raise


def describe_dead_letter(letter: Delivery) -> str:
    """One line: the event, and why it is here (the consumer's error, or the broker's reason)."""
    headers = letter.headers
    if ERROR_TYPE in headers:
        retries, message = headers.get(RETRY_COUNT, 0), headers.get(ERROR_MESSAGE, "")
        why = f"{headers[ERROR_TYPE]} after {retries} retries: {message}"
    else:
        deaths = headers.get("x-death") or [{}]
        why = f"dead-lettered by the broker: {deaths[0].get('reason', 'unknown reason')}"
    return f"{letter.type} id={letter.message_id} correlation={letter.correlation_id}: {why}"


def dead_letters(url: str, topology: Topology, subscriber: str, limit: int = 100) -> list[Delivery]:
    """The first `limit` messages of the subscriber's error queue, with their headers, left in
    it: taken unacked and given back when the channel closes (a classic queue puts them back
    where they were; they come back marked redelivered)."""
    with connect(url, timeout=TIMEOUT) as connection, raw(connection.channel()) as channel:
        queue = Queue(topology.error_queue(subscriber), no_declare=True, channel=channel)
        found: list[Delivery] = []
        while len(found) < limit and (message := queue.get(no_ack=False)) is not None:
            found.append(delivery(subscriber, message))
    return found


def replay(url: str, topology: Topology, subscriber: str) -> int:
    """Moves every message of the error queue back to the subscriber's queue, as a first attempt
    (without the error headers, x-attempt or the broker's x-death); how many. Each batch is
    acked out of the error queue only once the broker confirmed its copies; what failed raises
    (ports.event_transport.PublishFailed or the connection's error) and stays in the error queue.
    Messages that fail again while it runs are not replayed twice: it moves at most what the
    queue held when it began."""
    moved = 0
    with connect(url, timeout=TIMEOUT) as connection, raw(connection.channel()) as channel:
        copies = ConfirmedChannel(connection)
        name = topology.error_queue(subscriber)
        held = channel.queue_declare(name, passive=True).message_count
        queue = Queue(name, no_declare=True, channel=channel)
        while moved < held:
            batch: list[Message] = []
            while len(batch) < min(BATCH, held - moved) and (message := queue.get(no_ack=False)):
                batch.append(message)
            if not batch:
                break
            target = topology.queue(subscriber)
            copies.publish(
                [copy_to(target, delivery(subscriber, message), fresh=True) for message in batch],
                timeout=TIMEOUT,
            )
            batch[-1].ack(multiple=True)
            moved += len(batch)
    log.info("operation=events.replayed subscriber=%s count=%d", subscriber, moved)
    return moved
