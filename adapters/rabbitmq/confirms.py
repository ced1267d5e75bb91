"""A channel in publisher-confirm mode that publishes a batch, then waits for the broker's word
on every message of it.

kombu's `confirm_publish` transport option waits a round trip after each message; here the
batch goes out at once and the confirms are collected as they come (one ack may cover several:
`multiple`). A `mandatory` message that no queue takes is sent back (basic.return), and
RabbitMQ sends the return before the ack of the same message, so by the time the last ack is
in, every return is known. The broker numbers a confirm channel's publishes from 1: that is
the delivery tag its acks name.

A nack or a return leaves the channel as good as before (every confirm was collected); a
timeout or a connection error does not (confirms still owed would be counted against the next
batch), so its owner drops the connection then.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any

from kombu import Connection, Exchange, Producer

from adapters.rabbitmq.messages import Envelope
from ports.event_transport import PublishFailed

CONTENT_TYPE = "application/json"


class ConfirmedChannel:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._channel: Any = connection.channel()
        self._channel.confirm_select()
        self._producer = Producer(self._channel, auto_declare=False)
        self._published = 0
        self._unconfirmed: dict[int, str] = {}  # delivery tag -> message id
        self._refused: dict[str, str] = {}  # message id -> why
        events = self._channel.events
        events["basic_ack"].add(self._acked)
        events["basic_nack"].add(self._nacked)
        events["basic_return"].add(self._returned)

    def publish(self, envelopes: Sequence[Envelope], *, timeout: float) -> None:
        """Returns once the broker confirmed every one; raises PublishFailed when it nacked or
        returned any, TimeoutError when the confirms did not come within `timeout`, and the
        connection's errors as they are."""
        deadline = time.monotonic() + timeout
        self._refused.clear()
        for envelope in envelopes:
            self._producer.publish(
                envelope.body,
                exchange=envelope.exchange,
                routing_key=envelope.routing_key,
                mandatory=envelope.mandatory,
                delivery_mode=Exchange.PERSISTENT_DELIVERY_MODE,
                content_type=CONTENT_TYPE,
                content_encoding="utf-8",
                headers=dict(envelope.headers),
                message_id=envelope.message_id,
                correlation_id=envelope.correlation_id,
                type=envelope.type,
                timeout=timeout,
            )
            self._published += 1
            self._unconfirmed[self._published] = envelope.message_id
        while self._unconfirmed:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                missing = len(self._unconfirmed)
                raise TimeoutError(f"{missing} of {len(envelopes)} not confirmed in {timeout}s")
            with contextlib.suppress(TimeoutError):  # socket.timeout: the deadline is checked above
                self._connection.drain_events(timeout=remaining)
        if self._refused:
            refused = ", ".join(f"{message_id} ({why})" for message_id, why in self._refused.items())
            count = len(self._refused)
            raise PublishFailed(f"the broker did not take {count} of {len(envelopes)}: {refused}")

    def close(self) -> None:
        self._channel.close()

    def _settle(self, delivery_tag: int, multiple: bool, why: str | None) -> None:
        tags = [tag for tag in self._unconfirmed if tag <= delivery_tag] if multiple else [delivery_tag]
        for tag in tags:
            message_id = self._unconfirmed.pop(tag, None)
            if why is not None and message_id is not None:
                self._refused.setdefault(message_id, why)

    def _acked(self, delivery_tag: int, multiple: bool) -> None:
        self._settle(delivery_tag, multiple, None)

    def _nacked(self, delivery_tag: int, multiple: bool) -> None:
        self._settle(delivery_tag, multiple, "nacked")

    def _returned(self, error: Exception, exchange: str, routing_key: str, message: Any) -> None:
        message_id = message.properties.get("message_id") or "?"
        reason = getattr(error, "reply_text", None) or str(error)
        self._refused.setdefault(message_id, f"returned: {reason}, exchange={exchange!r} key={routing_key!r}")
