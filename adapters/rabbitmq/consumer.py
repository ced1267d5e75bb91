"""The worker's side: runs a handler on each message of some subscribers' queues.

`handle` returning means done: the message is acked. `handle` raising: a copy goes to the next
retry queue with `x-attempt` one more, confirmed by the broker, and only then is the original
acked (a crash between the two gives a duplicate, never a loss); when the retries are used up
(or the error is one of `permanent`) the copy goes to the error queue with the error in its
headers. A worker that dies holding a message does not ack it: the quorum queue gives it again
(`redelivered`) and, past its delivery limit, dead-letters it to the error queue itself.

Messages are handled one at a time in this thread: the broker's callback only queues them
here (at most `prefetch` per subscriber are unacked), so waiting for a confirm, which reads the
connection, never runs a handler inside another.

Slow start. RabbitMQ 3.x counts a message towards its delivery limit whenever it comes back
unacked, and a consumer that dies gives back every message it held, not only the one it died
on: with a wide prefetch a message that crashes the worker would take its neighbours to the
error queue with it. So after each (re)connection a subscriber is consumed with a prefetch of
1, and widened to `prefetch` once a message that was not a redelivery has been handled (the
queue gives the returned ones first, so by then they are worked through, each on its own).
A prefetch applies to the consumers created after it is set, hence the cancel and consume
again. A graceful stop gives back the messages not yet handled: that counts too, once.

The handler must be idempotent (a message may come twice: dedupe on `message_id`), and should
return within the heartbeat (default 30 s; the broker drops a connection that misses two).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from kombu import Connection, Consumer, Message, Queue

from adapters.outage import OutageLog
from adapters.rabbitmq.confirms import ConfirmedChannel
from adapters.rabbitmq.connections import connect
from adapters.rabbitmq.dead_letters import dead_letters, replay
from adapters.rabbitmq.messages import Delivery, delivery, raw
from adapters.rabbitmq.retries import next_stop
from adapters.rabbitmq.topology import Topology
from ports.event_transport import PublishFailed

__all__ = ["Delivery", "RabbitConsumer", "dead_letters", "replay"]

log = logging.getLogger("user_service.events")

POLL = 1.0  # seconds between looks at `stop` while no message comes
FIRST_PAUSE, MAX_PAUSE = 0.5, 30.0  # between reconnection attempts, doubling


class RabbitConsumer:
    def __init__(
        self,
        url: str,
        topology: Topology,
        subscribers: Sequence[str],
        handle: Callable[[Delivery], None],
        *,
        prefetch: int = 16,
        permanent: tuple[type[Exception], ...] = (),
        transient: tuple[type[Exception], ...] = (),
        heartbeat: float = 30.0,
        timeout: float = 10.0,
    ) -> None:
        """`permanent`: errors no retry can mend (an unknown event version, an unreadable
        body): straight to the error queue. `transient`: errors of a dependency that is down
        (adapters.rabbitmq.retries.next_stop): retried for as long as they last, never
        dead-lettered.
        `timeout`: seconds to connect and for a confirm."""
        unknown = [name for name in subscribers if name not in topology.bindings]
        if unknown or not subscribers:
            raise ValueError(f"subscribers not in the topology's bindings: {unknown or 'none given'}")
        if prefetch < 1:
            raise ValueError(f"prefetch must be at least 1: {prefetch}")
        self.url, self.topology, self.subscribers = url, topology, tuple(subscribers)
        self.handle, self.prefetch, self.permanent = handle, prefetch, permanent
        self.transient = transient
        self._heartbeat, self.timeout = heartbeat, timeout
        probe = Connection(url)  # no I/O: its transport's error classes
        self._errors = (*probe.connection_errors, *probe.channel_errors, PublishFailed)
        self._outage = OutageLog(
            "rabbitmq", log, what="RabbitMQ", effect="events wait in their queues; reconnecting"
        )
        self.consuming = False  # connected and consuming: what the worker's readiness reports

    def run(self, stop: threading.Event) -> None:
        """Consumes until `stop` is set (looked at every second at least); the message in hand
        is finished (handled and acked) first. A lost connection is reconnected: at once, then
        after pauses doubling from 0.5 s to 30 s while it fails."""
        pause = FIRST_PAUSE
        while not stop.is_set():
            connection: Connection | None = None
            try:
                connection = connect(self.url, timeout=self.timeout, heartbeat=self._heartbeat)
                session = _Session(self, connection)
            except self._errors as error:
                if connection is not None:
                    connection.collect()
                self._outage.failed("connect", error)
                stop.wait(pause)
                pause = min(MAX_PAUSE, pause * 2)
                continue
            except BaseException:
                if connection is not None:
                    connection.collect()
                raise
            self._outage.answered()
            pause = FIRST_PAUSE
            self.consuming = True
            try:
                session.serve(stop)
            except self._errors as error:
                connection.collect()
                self._outage.failed("consume", error)
                continue
            except BaseException:  # the handler's KeyboardInterrupt, say: what is unacked goes back
                connection.collect()
                raise
            finally:
                self.consuming = False
            connection.release()  # stopped: a proper goodbye, the unhandled ones go back now
        log.info("operation=events.consumer_stopped subscribers=%s", ",".join(self.subscribers))


class _Session:
    """Consuming on one connection: a channel for the queues, one for confirmed copies."""

    def __init__(self, owner: RabbitConsumer, connection: Connection) -> None:
        self._owner, self._connection = owner, connection
        owner.topology.declare(connection)
        self._channel: Any = raw(connection.channel())
        self._copies = ConfirmedChannel(connection)
        self._received: deque[tuple[str, Message]] = deque()
        self._wide: set[str] = set()
        self._channel.basic_qos(0, 1, False)
        self._consumers = {
            name: Consumer(
                self._channel,
                [Queue(owner.topology.queue(name), no_declare=True)],
                auto_declare=False,
                on_message=partial(self._receive, name),
            )
            for name in owner.subscribers
        }
        for consumer in self._consumers.values():
            consumer.consume()
        log.info(
            "operation=events.consume subscribers=%s prefetch=%d",
            ",".join(owner.subscribers),
            owner.prefetch,
        )

    def serve(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self._connection.heartbeat_check()
            if self._received:
                self._process(*self._received.popleft())
                continue
            with contextlib.suppress(TimeoutError):  # socket.timeout
                self._connection.drain_events(timeout=POLL)

    def _receive(self, subscriber: str, message: Message) -> None:
        self._received.append((subscriber, message))

    def _process(self, subscriber: str, message: Message) -> None:
        received = delivery(subscriber, message)
        try:
            self._owner.handle(received)
        except Exception as error:
            owner = self._owner
            copy = next_stop(
                owner.topology, received, error, permanent=owner.permanent, transient=owner.transient
            )
            self._copies.publish([copy], timeout=self._owner.timeout)
        widen = subscriber not in self._wide and not received.redelivered
        if widen and self._owner.prefetch > 1:
            # Cancelled while this message is still unacked, the prefetch-1 consumer has nothing
            # else on its way: a delivery arriving after the cancel would find no callback and
            # be given back, which counts as a delivery.
            self._consumers[subscriber].cancel()
        message.ack()  # a cancelled consumer's messages are still the channel's to ack
        if widen:
            self._wide.add(subscriber)
            if self._owner.prefetch > 1:
                self._channel.basic_qos(0, self._owner.prefetch, False)
                self._consumers[subscriber].consume()
