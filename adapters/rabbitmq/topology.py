"""Where events go: one topic exchange, and per subscriber a quorum queue, its retry queues and
its error queue.

    publisher --type--> {prefix}events --binding per type--> {prefix}{subscriber}
        handler raised:  --> {prefix}{subscriber}.retry.{n}  (TTL = delay) --> back to the queue
        retries used up: --> {prefix}{subscriber}_error
        redelivered past x-delivery-limit (the worker died on it): dead-lettered --> _error

Quorum queues since RabbitMQ 3.10 take a message TTL and dead-letter at-least-once (the
`at-least-once` strategy needs `x-overflow: reject-publish`; with no length limit it never
refuses anything), so a retry queue is as safe as the queue it feeds. One retry queue per delay:
a queue expires messages only from its head, so mixed delays in one queue would hold the short
ones behind the long.

The error queue is a classic queue: peeking at it (`dead_letters`) takes messages and gives them
back, and a quorum queue counts every give-back towards a delivery limit (RabbitMQ 4 has one by
default, 20), which would at last drop what it was meant to keep.

Declaring is idempotent while the arguments stay the same; RabbitMQ refuses (PRECONDITION_FAILED)
to redeclare a queue with other arguments: changing `delivery_limit` or a delay on a running
system means a policy, or deleting the queue once it is empty.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from kombu import Connection, Exchange, Queue, binding


def _dead_letter_to(queue: str) -> dict[str, Any]:
    """Dead-letter through the default exchange straight into `queue`, at least once."""
    return {
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": queue,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


@dataclass(frozen=True)
class Topology:
    prefix: str  # EVENTS_PREFIX, e.g. "user_service."
    bindings: Mapping[str, tuple[str, ...]]  # subscriber name -> the event type names it consumes
    retry_delays: tuple[float, ...] = (1.0, 5.0, 30.0)  # seconds before each retry
    delivery_limit: int = 10  # deliveries past the first before a queue dead-letters a message

    def __post_init__(self) -> None:
        if any(delay <= 0 for delay in self.retry_delays):
            raise ValueError(f"retry delays must be positive: {self.retry_delays}")
        if self.delivery_limit < 0:
            raise ValueError(f"delivery_limit must be 0 or more: {self.delivery_limit}")

    @property
    def exchange(self) -> str:
        return f"{self.prefix}events"

    def queue(self, subscriber: str) -> str:
        return f"{self.prefix}{subscriber}"

    def retry_queue(self, subscriber: str, retry: int) -> str:
        """The queue of the `retry`-th retry (1-based)."""
        return f"{self.prefix}{subscriber}.retry.{retry}"

    def error_queue(self, subscriber: str) -> str:
        return f"{self.prefix}{subscriber}_error"

    def declare(self, connection: Connection) -> None:
        """Declares the exchange and every subscriber's queues and bindings (idempotent)."""
        with connection.channel() as channel:
            self._exchange()(channel).declare()
            for queue in self._queues():
                queue(channel).declare()

    def delete(self, connection: Connection) -> None:
        """Deletes every queue and the exchange (messages included)."""
        with connection.channel() as channel:
            for queue in self._queues():
                channel.queue_delete(queue.name)
            channel.exchange_delete(self.exchange)

    def _exchange(self) -> Exchange:
        return Exchange(self.exchange, type="topic", durable=True)

    def _queues(self) -> Iterator[Queue]:
        exchange = self._exchange()
        for subscriber, types in self.bindings.items():
            main, error = self.queue(subscriber), self.error_queue(subscriber)
            yield Queue(error, durable=True)
            yield Queue(
                main,
                durable=True,
                queue_arguments={
                    "x-queue-type": "quorum",
                    "x-delivery-limit": self.delivery_limit,
                    **_dead_letter_to(error),
                },
                bindings=[binding(exchange, routing_key=type_) for type_ in types],
            )
            for retry, delay in enumerate(self.retry_delays, start=1):
                yield Queue(
                    self.retry_queue(subscriber, retry),
                    durable=True,
                    queue_arguments={
                        "x-queue-type": "quorum",
                        "x-message-ttl": max(1, round(delay * 1000)),
                        **_dead_letter_to(main),
                    },
                )
