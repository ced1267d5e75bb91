"""The relay and worker processes, built from the container (see app.cli)."""

from __future__ import annotations

import contextlib
import inspect
import logging
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import kombu
import psycopg
from sqlalchemy import Engine

from adapters.caching.resilient import CacheUnavailable
from adapters.events.envelopes import UnknownEvent, UnreadableEvent
from adapters.events.registry import REGISTRY
from adapters.rabbitmq.consumer import RabbitConsumer
from adapters.rabbitmq.publisher import RabbitPublisher
from adapters.rabbitmq.topology import Topology
from adapters.sqlalchemy.engine import check
from adapters.sqlalchemy.outage import DatabaseUnavailable
from adapters.sqlalchemy.outbox import CHANNEL
from app.containers import Container
from app.events.probe import Check, serve
from app.events.relay import Relay
from app.events.worker import Worker

log = logging.getLogger("user_service.events")


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT: the process finishes what it has in hand and exits."""
    stop = threading.Event()

    def handler(signum: int, _frame: Any) -> None:
        log.info("operation=events.stopping signal=%s", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def topology(settings: dict) -> Topology:
    """Every worker subscriber's queue and bindings (the read cache's only when there is one)."""
    cached = settings["cache"]["backend"] != "none"
    bindings = {
        name: types
        for name, (_handler, types) in Container.worker_subscribers.items()
        if cached or not name.startswith("caching.")
    }
    events = settings["events"]
    return Topology(
        prefix=events["prefix"],
        bindings=bindings,
        retry_delays=events["retry_delays"],
        delivery_limit=events["delivery_limit"],
    )


def declare(settings: dict, layout: Topology) -> None:
    with kombu.Connection(settings["events"]["url"]) as connection:
        layout.declare(connection)


def run_relay(container: Any, settings: dict, stop: threading.Event, port: int | None = None) -> None:
    layout = topology(settings)
    declare(settings, layout)
    engine = container.storage.engine()
    publisher = RabbitPublisher(settings["events"]["url"], layout)
    wait = notified(engine)
    if wait is not None:
        wait(0)  # LISTEN before the first claim: no commit made while the backlog drains is missed
    relay = Relay(container.storage.outbox(), publisher, REGISTRY.dumps, wait=wait)
    with probes(port, engine, broker=lambda: relay.broker_answers):
        try:
            relay.run(stop)
        finally:
            publisher.close()


@contextlib.contextmanager
def probes(port: int | None, engine: Engine, broker: Check) -> Iterator[None]:
    """/metrics and /health/* on `port` while the block runs (none when `port` is None)."""
    if port is None:
        yield
        return

    def database() -> bool:
        check(engine)  # raises when it does not answer
        return True

    server = serve(port, {"database": database, "broker": broker})
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def run_worker(
    container: Any, settings: dict, names: Sequence[str], stop: threading.Event, port: int | None = None
) -> None:
    layout = topology(settings)
    unknown = sorted(set(names) - set(layout.bindings))
    if unknown:
        raise ValueError(
            f"no such worker subscriber: {', '.join(unknown)} (known: {', '.join(layout.bindings)})"
        )
    chosen = list(names) or list(layout.bindings)
    declare(settings, layout)
    worker = build_worker(container, chosen)
    log.info("operation=worker.start subscribers=%s", ",".join(chosen))
    consumer = RabbitConsumer(
        settings["events"]["url"],
        layout,
        chosen,
        worker.handle,
        prefetch=settings["events"]["prefetch"],
        permanent=(UnknownEvent, UnreadableEvent),  # no retry mends them: straight to the error queue
        # A dependency down (the cache, the database) is waited for, however long it is down.
        transient=(CacheUnavailable, DatabaseUnavailable),
    )
    with probes(port, container.storage.engine(), broker=lambda: consumer.consuming):
        consumer.run(stop)
    log.info("operation=worker.stop")


def build_worker(container: Any, names: Sequence[str]) -> Worker:
    """The worker of these subscribers, over the container's database and stores."""
    handlers = container.worker_handlers()
    return Worker(
        REGISTRY,
        {name: _taking_uow(handlers[name], Container.worker_subscribers[name][0]) for name in names},
        lambda event_id, name: container.storage.uow(inbox=(event_id, name)),
        container.storage.inbox(),
    )


def _taking_uow(bound: Callable[..., Any], subscriber: Callable) -> Callable[..., Any]:
    """The subscriber as the worker calls it, `(event, uow=...)`, whether or not it writes."""
    if "uow" in inspect.signature(subscriber).parameters:
        return bound
    return lambda event, uow: bound(event)


def notified(engine: Engine) -> Callable[[float], None] | None:
    """On PostgreSQL, a wait that ends at the first `NOTIFY outbox` (or the timeout); None
    elsewhere (the relay polls)."""
    if engine.dialect.name != "postgresql":
        return None
    conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    listening: list[psycopg.Connection] = []  # the LISTEN connection, made on first use

    def wait(timeout: float) -> None:
        try:
            if not listening or listening[0].closed:
                listening[:] = [psycopg.connect(conninfo, autocommit=True)]
                listening[0].execute(f"LISTEN {CHANNEL}")
            for _notify in listening[0].notifies(timeout=timeout, stop_after=1):
                pass
        except psycopg.Error as error:
            log.warning("operation=relay.listen_failed error=%r: polling instead", error)
            listening.clear()
            threading.Event().wait(timeout)

    return wait
