"""The RabbitMQ event transport against the real broker (tests/support/rabbitmq.py: a random
prefix per test, everything it declared deleted afterwards; fails, never skips, without the
server). Consumers run in a thread for the length of a `with running(...)` block."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from adapters.rabbitmq.consumer import Delivery, RabbitConsumer
from tests.support.rabbitmq import proxy, rabbitmq  # noqa: F401  (fixtures of this suite)


@dataclass
class Handler:
    """Records every delivery, then runs `then` on it (raise to fail it)."""

    then: Callable[[Delivery], None] = lambda delivery: None
    seen: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, delivery: Delivery) -> None:
        with self.lock:
            self.seen.append(delivery)
        self.then(delivery)

    def bodies(self) -> list[bytes]:
        with self.lock:
            return [delivery.body for delivery in self.seen]


@dataclass
class Running:
    stop: threading.Event
    thread: threading.Thread
    errors: list[BaseException]


@contextmanager
def running(consumer: RabbitConsumer, join: float = 5.0) -> Iterator[Running]:
    """`consumer.run` in a thread; stopped and joined at the end of the block, its exception (if
    any) in `errors`."""
    stop, errors = threading.Event(), []

    def run() -> None:
        try:
            consumer.run(stop)
        except BaseException as error:  # a simulated crash, or a bug: the test looks
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield Running(stop, thread, errors)
    finally:
        stop.set()
        thread.join(join)
        assert not thread.is_alive(), "the consumer did not stop"
