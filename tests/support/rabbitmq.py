"""The RabbitMQ server of the tests: TEST_AMQP_URL (default amqp://guest:guest@127.0.0.1:5672//),
a connection that fails the test (never skips) when it is missing, a `rabbitmq` fixture with a
random prefix whose topologies are deleted afterwards, and a TCP proxy that can cut connections
(a broker that goes away, without the management API)."""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from kombu import Connection, Message, Queue

from adapters.rabbitmq.messages import raw
from adapters.rabbitmq.topology import Topology

AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


def amqp_connection(url: str = AMQP_URL) -> Connection:
    """A connected kombu Connection; fails the test (never skips) when RabbitMQ is not there."""
    connection = Connection(url, connect_timeout=2)
    try:
        connection.ensure_connection(max_retries=0, reraise_as_library_errors=False)  # one try
        return connection
    except Exception as error:
        problem = repr(error)
    connection.collect()
    pytest.fail(
        f"RabbitMQ is not reachable at {url} ({problem}). Start it, or point TEST_AMQP_URL at "
        "one: the event transport tests need it and never skip.",
        pytrace=False,
    )


def wait_until(condition: Callable[[], Any], timeout: float = 3.0, what: str = "the condition") -> Any:
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout}s")
        time.sleep(0.02)
    return result


@dataclass
class Broker:
    """The test's view of the broker: its own connection (not the code under test's), the
    test's prefix, and the topologies it declared (deleted after the test)."""

    url: str
    prefix: str
    connection: Connection
    declared: list[Topology] = field(default_factory=list)

    def topology(self, bindings: Mapping[str, tuple[str, ...]], **options: Any) -> Topology:
        topology = Topology(prefix=self.prefix, bindings=bindings, **options)
        self.declared.append(topology)
        topology.declare(self.connection)
        return topology

    def count(self, queue: str) -> int:
        """Messages ready in `queue` (not those delivered and unacked)."""
        with self.connection.channel() as channel:
            return int(channel.queue_declare(queue, passive=True).message_count)

    def take(self, queue: str) -> list[Message]:
        """Every message ready in `queue`, removed (bodies as bytes)."""
        taken = []
        with raw(self.connection.channel()) as channel:
            source = Queue(queue, no_declare=True, channel=channel)
            while (message := source.get(no_ack=True)) is not None:
                taken.append(message)
        return taken


@pytest.fixture
def rabbitmq() -> Iterator[Broker]:
    connection = amqp_connection()
    broker = Broker(AMQP_URL, f"test.{uuid.uuid4().hex[:12]}.", connection)
    try:
        yield broker
    finally:
        for topology in broker.declared:
            topology.delete(connection)
        connection.release()


class TcpProxy:
    """Forwards 127.0.0.1:<port> to the broker; `cut()` drops every connection through it, and
    while `refusing` it takes new ones only to close them."""

    def __init__(self, url: str = AMQP_URL) -> None:
        parts = urlsplit(url)
        self._target = (parts.hostname or "127.0.0.1", parts.port or 5672)
        self._listener = socket.create_server(("127.0.0.1", 0))
        port = self._listener.getsockname()[1]
        credentials = f"{parts.username}:{parts.password}@" if parts.username else ""
        netloc = f"{credentials}127.0.0.1:{port}"
        self.url = urlunsplit(parts._replace(netloc=netloc))
        self.refusing = False
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            doomed, self._open = self._open, []
        for sock in doomed:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        self.cut()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.refusing:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self._target, timeout=2)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, one: socket.socket, other: socket.socket) -> None:
        peers = {one: other, other: one}
        try:
            while True:
                readable, _, _ = select.select(list(peers), [], [], 0.5)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for sock in peers:
                sock.close()


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    proxy = TcpProxy()
    try:
        yield proxy
    finally:
        proxy.close()
