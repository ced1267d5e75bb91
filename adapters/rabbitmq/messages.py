"""A message as the transport sees it: a received one as a Delivery, an outgoing one as an
Envelope, and the headers the transport writes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kombu import Message

ATTEMPT = "x-attempt"  # 1 on the first delivery; each retry publishes the copy with one more
ERROR_TYPE = "x-error-type"
ERROR_MESSAGE = "x-error-message"
RETRY_COUNT = "x-retry-count"
SUBSCRIBER = "x-subscriber"
ERROR_MESSAGE_LENGTH = 1000  # characters of the error kept in the header

# What RabbitMQ adds when it dead-letters or redelivers: a copy we publish starts without them.
_BROKER_HEADERS = ("x-death", "x-delivery-count", "x-first-death-", "x-last-death-")
_OURS = (ATTEMPT, ERROR_TYPE, ERROR_MESSAGE, RETRY_COUNT, SUBSCRIBER)


@dataclass(frozen=True)
class Delivery:
    subscriber: str
    body: bytes
    message_id: str
    correlation_id: str | None
    type: str
    attempt: int  # 1 on the first delivery, 2 after the first retry...
    redelivered: bool  # the broker gave it before and got no ack (a consumer died holding it)
    headers: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Envelope:
    """A message to publish: `exchange` "" (the default one) with a queue's name as the
    routing key goes straight to that queue."""

    exchange: str
    routing_key: str
    body: bytes
    message_id: str
    correlation_id: str | None
    type: str
    headers: Mapping[str, Any] = field(default_factory=dict)
    mandatory: bool = True  # no queue takes it: the broker sends it back and the publish fails


def raw(channel: Any) -> Any:
    """`channel`, told to leave bodies as bytes: py-amqp otherwise decodes every body that has
    a content_encoding into a str."""
    channel.auto_decode = False
    return channel


def delivery(subscriber: str, message: Message) -> Delivery:
    properties, headers = message.properties, dict(message.headers or {})
    body = message.body
    if isinstance(body, str):  # from a channel that decoded it after all
        body = body.encode(message.content_encoding or "utf-8")
    return Delivery(
        subscriber=subscriber,
        body=body,
        message_id=properties.get("message_id") or "",
        correlation_id=properties.get("correlation_id"),
        type=properties.get("type") or "",
        attempt=int(headers.get(ATTEMPT, 1)),
        redelivered=bool(message.delivery_info.get("redelivered")),
        headers=headers,
    )


def copy_to(
    queue: str, delivery: Delivery, headers: Mapping[str, Any] | None = None, *, fresh: bool = False
) -> Envelope:
    """The delivery again, for `queue`: without the broker's headers (and, `fresh`, without
    ours: attempt 1 again), with `headers` added."""
    kept = {
        name: value
        for name, value in delivery.headers.items()
        if not name.startswith(_BROKER_HEADERS) and not (fresh and name in _OURS)
    }
    return Envelope(
        exchange="",
        routing_key=queue,
        body=delivery.body,
        message_id=delivery.message_id,
        correlation_id=delivery.correlation_id,
        type=delivery.type,
        headers={**kept, **(headers or {})},
    )
