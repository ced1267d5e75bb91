"""The relay's publisher: a batch of envelopes to the events exchange, returning only once the
broker has confirmed every one (ports.event_transport.EventPublisher).

One connection, opened on the first publish (declaring the topology, so that the queues exist
before the first event does) and kept; a failure drops it and the next publish opens another.
A connection found dead on the first use after a quiet spell is replaced and the batch sent
once more at once, so a broker restart while the relay was idle costs no failed round. What
fails is raised as PublishFailed and the caller, who marks nothing sent, tries again later: a
message that did reach a queue before the failure then arrives twice, and consumers dedupe on
its message_id (the event id).

An event of a type some subscriber of the topology is bound to is published `mandatory`: if no
queue takes it (its queue was deleted under the relay) the publish fails, and the event stays
in the outbox, rather than being lost. An event no subscriber here consumes (a
SubscriptionRegistered, say) is published all the same, for the queues other services bind to
the exchange, and dropped by the broker when there is none.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from kombu import Connection

from adapters.rabbitmq.confirms import ConfirmedChannel
from adapters.rabbitmq.connections import connect
from adapters.rabbitmq.messages import Envelope
from adapters.rabbitmq.topology import Topology
from ports.event_transport import Outgoing, PublishFailed

__all__ = ["Outgoing", "PublishFailed", "RabbitPublisher"]

log = logging.getLogger("user_service.events")


class RabbitPublisher:
    def __init__(self, url: str, topology: Topology, *, timeout: float = 10.0) -> None:
        """`timeout`: seconds to connect, to write, and for a batch's confirms."""
        self._url, self._topology, self._timeout = url, topology, timeout
        self._bound = frozenset(type_ for types in topology.bindings.values() for type_ in types)
        self._lock = threading.Lock()  # one batch at a time on the one channel
        self._connection: Connection | None = None
        self._channel: ConfirmedChannel | None = None
        probe = Connection(url)  # no I/O: its transport's error classes
        # a channel error (e.g. NOT_FOUND: no such exchange) closes the channel: dropped as well
        self._connection_errors: tuple[type[BaseException], ...] = tuple(probe.connection_errors)
        self._errors = (TimeoutError, *probe.connection_errors, *probe.channel_errors)

    def publish(self, messages: Sequence[Outgoing]) -> None:
        """Publish with publisher confirms, persistent, routing key = type, message_id =
        event_id, correlation_id, type, content_type application/json, mandatory when the
        topology binds the type; returns only when the broker confirmed every message; raises
        PublishFailed on a nack, a return (unroutable), a timeout or a lost connection."""
        if not messages:
            return
        envelopes = [
            Envelope(
                exchange=self._topology.exchange,
                routing_key=message.type,
                body=message.body,
                message_id=message.event_id,
                correlation_id=message.correlation_id,
                type=message.type,
                mandatory=message.type in self._bound,
            )
            for message in messages
        ]
        with self._lock:
            reused = self._channel is not None
            try:
                self._publish(envelopes)
            except self._errors as error:
                self._drop()
                # a dead connection, not a slow broker (TimeoutError is an OSError) nor a refusal
                dead = isinstance(error, self._connection_errors) and not isinstance(error, TimeoutError)
                if not (reused and dead):
                    raise PublishFailed(f"publishing {len(envelopes)} event(s): {error!r}") from error
                log.info("operation=events.reconnect error=%r: the broker connection was gone", error)
                try:
                    self._publish(envelopes)
                except self._errors as again:
                    self._drop()
                    raise PublishFailed(f"publishing {len(envelopes)} event(s): {again!r}") from again

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _publish(self, envelopes: list[Envelope]) -> None:
        if self._channel is None:
            self._connect()
        assert self._channel is not None
        self._channel.publish(envelopes, timeout=self._timeout)

    def _connect(self) -> None:
        connection = connect(self._url, timeout=self._timeout)
        try:
            self._topology.declare(connection)
            self._connection, self._channel = connection, ConfirmedChannel(connection)
        except BaseException:
            connection.collect()
            raise

    def _drop(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            connection.collect()  # no goodbye: the connection may be dead
