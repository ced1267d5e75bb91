"""The RabbitMQ transport of durable events, against the broker: publishing with confirms,
routing per subscriber, retries through the delay queues, the error queue (peek and replay),
the quorum queues' delivery limit for a worker that dies on a message, stopping, prefetch and
reconnection."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from adapters.rabbitmq.consumer import Delivery, RabbitConsumer, dead_letters, replay
from adapters.rabbitmq.publisher import Outgoing, PublishFailed, RabbitPublisher
from adapters.rabbitmq.topology import Topology
from tests.contracts.event_transport.conftest import Handler, running
from tests.support.rabbitmq import Broker, TcpProxy, wait_until

ROOT = Path(__file__).resolve().parents[3]
REGISTERED, CHANGED, DELETED = "UserRegistered", "UserEmailChanged", "UserDeleted"
FAST = (0.2, 0.2)  # retry delays


class Boom(Exception):
    pass


class Unreadable(Exception):
    pass


class Crash(BaseException):
    """Stands for the worker dying in the handler: not an Exception, so nothing acks it."""


def outgoing(type_: str = REGISTERED, **fields: object) -> Outgoing:
    event_id = str(uuid.uuid4())
    body = json.dumps({"event_id": event_id, "type": type_, **fields}).encode()
    return Outgoing(event_id=event_id, type=type_, correlation_id=uuid.uuid4().hex, body=body)


@pytest.fixture
def publisher(rabbitmq: Broker) -> Iterator[Callable[..., RabbitPublisher]]:
    made: list[RabbitPublisher] = []

    def make(topology: Topology, url: str = rabbitmq.url, **options: float) -> RabbitPublisher:
        made.append(publisher := RabbitPublisher(url, topology, **options))
        return publisher

    yield make
    for publisher in made:
        publisher.close()


def test_a_published_message_is_consumed_once_with_every_property(rabbitmq, publisher):
    topology = rabbitmq.topology({"users.welcome": (REGISTERED,)})
    message = outgoing()
    publisher(topology).publish([message])
    handler = Handler()
    with running(RabbitConsumer(rabbitmq.url, topology, ["users.welcome"], handler)):
        wait_until(lambda: handler.seen)
        time.sleep(0.3)  # time for a second delivery, which must not come
    assert handler.seen == [
        Delivery(
            subscriber="users.welcome",
            body=message.body,
            message_id=message.event_id,
            correlation_id=message.correlation_id,
            type=REGISTERED,
            attempt=1,
            redelivered=False,
            headers={},
        )
    ]
    assert rabbitmq.count(topology.queue("users.welcome")) == 0  # acked, not given back


def test_each_subscriber_gets_its_own_copy_of_the_types_it_is_bound_to(rabbitmq, publisher):
    topology = rabbitmq.topology({"caching.one": (REGISTERED,), "auth.two": (REGISTERED, CHANGED)})
    publisher(topology).publish([outgoing(REGISTERED), outgoing(CHANGED)])
    handler = Handler()
    with running(RabbitConsumer(rabbitmq.url, topology, ["caching.one", "auth.two"], handler)):
        wait_until(lambda: len(handler.seen) >= 3)
        time.sleep(0.3)
    got = sorted((delivery.subscriber, delivery.type) for delivery in handler.seen)
    assert got == [("auth.two", CHANGED), ("auth.two", REGISTERED), ("caching.one", REGISTERED)]


def test_publish_returns_once_the_broker_has_every_message(rabbitmq, publisher):
    topology = rabbitmq.topology({"users.welcome": (REGISTERED,)})
    messages = [outgoing(n=n) for n in range(50)]
    publisher(topology).publish(messages)
    # at once, from another connection: nothing is still on its way
    taken = rabbitmq.take(topology.queue("users.welcome"))
    assert [message.body for message in taken] == [message.body for message in messages]
    first, sent = taken[0], messages[0]
    assert first.delivery_info["routing_key"] == REGISTERED
    assert first.delivery_info["exchange"] == topology.exchange
    assert {
        name: first.properties.get(name)
        for name in ("message_id", "correlation_id", "type", "content_type", "delivery_mode")
    } == {
        "message_id": sent.event_id,
        "correlation_id": sent.correlation_id,
        "type": REGISTERED,
        "content_type": "application/json",
        "delivery_mode": 2,
    }


def test_a_bound_type_no_queue_takes_fails_the_publish_and_the_publisher_goes_on(rabbitmq, publisher):
    topology = rabbitmq.topology({"users.welcome": (REGISTERED,), "users.farewell": (DELETED,)})
    events = publisher(topology)
    events.publish([outgoing()])  # connected, the topology declared
    with rabbitmq.connection.channel() as channel:  # the farewell queue deleted under the publisher
        channel.queue_delete(topology.queue("users.farewell"))
    lost = outgoing(DELETED)
    with pytest.raises(PublishFailed, match=lost.event_id):
        events.publish([outgoing(), lost])
    events.publish([outgoing()])
    assert rabbitmq.count(topology.queue("users.welcome")) == 3  # the routable one came, twice is fine


def test_a_type_no_subscriber_here_consumes_is_published_for_others(rabbitmq, publisher):
    topology = rabbitmq.topology({"users.welcome": (REGISTERED,)})
    others = f"{rabbitmq.prefix}another.service"
    with rabbitmq.connection.channel() as channel:  # another service's queue on the same exchange
        channel.queue_declare(others, durable=False, auto_delete=False)
        channel.queue_bind(others, topology.exchange, CHANGED)
    try:
        publisher(topology).publish([outgoing(), outgoing(DELETED), outgoing(CHANGED)])  # no failure
        assert rabbitmq.count(topology.queue("users.welcome")) == 1
        assert rabbitmq.count(others) == 1  # the unbound DELETED was dropped by the exchange
    finally:
        with rabbitmq.connection.channel() as channel:
            channel.queue_delete(others)


def test_a_broker_out_of_reach_is_a_publish_failure():
    topology = Topology(prefix="unreachable.", bindings={})
    events = RabbitPublisher("amqp://guest:guest@127.0.0.1:1//", topology, timeout=1.0)
    with pytest.raises(PublishFailed):
        events.publish([outgoing()])


def test_a_connection_lost_while_idle_is_replaced_without_a_failure(rabbitmq, publisher, proxy: TcpProxy):
    topology = rabbitmq.topology({"users.welcome": (REGISTERED,)})
    events = publisher(topology, url=proxy.url)
    events.publish([outgoing()])
    proxy.cut()
    events.publish([outgoing()])
    assert rabbitmq.count(topology.queue("users.welcome")) == 2


def test_a_handler_that_fails_once_gets_the_message_again_after_the_first_delay(rabbitmq, publisher):
    topology = rabbitmq.topology({"users.welcome": (REGISTERED,)}, retry_delays=(0.3, 5.0))
    times: list[float] = []

    def fail_first(delivery: Delivery) -> None:
        times.append(time.monotonic())
        if delivery.attempt == 1:
            raise Boom("the mail server hung up")

    handler = Handler(fail_first)
    message = outgoing()
    publisher(topology).publish([message])
    with running(RabbitConsumer(rabbitmq.url, topology, ["users.welcome"], handler)):
        wait_until(lambda: len(handler.seen) >= 2)
        time.sleep(0.3)
    assert [(d.message_id, d.attempt, d.redelivered) for d in handler.seen] == [
        (message.event_id, 1, False),
        (message.event_id, 2, False),
    ]
    assert times[1] - times[0] >= 0.3
    for queue in (topology.queue("users.welcome"), topology.retry_queue("users.welcome", 1)):
        assert rabbitmq.count(queue) == 0
    assert dead_letters(rabbitmq.url, topology, "users.welcome") == []


def test_a_handler_that_always_fails_sends_the_message_to_the_error_queue(rabbitmq, publisher):
    topology = rabbitmq.topology({"users.welcome": (REGISTERED,)}, retry_delays=FAST)
    poison, *fine = [outgoing(), outgoing(), outgoing(), outgoing()]

    def fail_poison(delivery: Delivery) -> None:
        if delivery.message_id == poison.event_id:
            raise Boom("x" * 5000)

    handler = Handler(fail_poison)
    publisher(topology).publish([poison, *fine])
    with running(RabbitConsumer(rabbitmq.url, topology, ["users.welcome"], handler)):
        wait_until(lambda: rabbitmq.count(topology.error_queue("users.welcome")) == 1)
    ids = [delivery.message_id for delivery in handler.seen]
    assert [d.attempt for d in handler.seen if d.message_id == poison.event_id] == [1, 2, 3]
    # the ones behind it were not held up by its retries
    assert sorted(ids[1:4]) == sorted(message.event_id for message in fine)
    [buried] = dead_letters(rabbitmq.url, topology, "users.welcome")
    assert (buried.message_id, buried.body, buried.type) == (poison.event_id, poison.body, REGISTERED)
    assert buried.correlation_id == poison.correlation_id
    headers = buried.headers
    assert headers["x-error-type"] == f"{__name__}.Boom"
    assert headers["x-error-message"] == "x" * 1000
    assert (headers["x-retry-count"], headers["x-subscriber"]) == (2, "users.welcome")


class DependencyDown(Exception):
    pass


def test_a_transient_error_is_retried_for_as_long_as_it_lasts_and_never_dead_lettered(rabbitmq, publisher):
    topology = rabbitmq.topology({"users.welcome": (REGISTERED,)}, retry_delays=(0.1, 0.2))
    message = outgoing()
    down = threading.Event()
    down.set()
    handled: list[int] = []

    def needs_the_dependency(delivery: Delivery) -> None:
        if down.is_set():
            raise DependencyDown("the cache does not answer")
        handled.append(delivery.attempt)

    handler = Handler(needs_the_dependency)
    publisher(topology).publish([message])
    consumer = RabbitConsumer(rabbitmq.url, topology, ["users.welcome"], handler, transient=(DependencyDown,))
    with running(consumer):
        # Many more tries than there are delays (after the last, again and again), none dead-lettered.
        wait_until(lambda: len(handler.seen) >= 6, 5, "six tries")
        assert rabbitmq.count(topology.error_queue("users.welcome")) == 0
        down.clear()
        wait_until(lambda: handled, 5, "the message handled once the dependency is back")
        time.sleep(0.5)
    assert len(handled) == 1  # handled once, and no copy left behind
    assert handled[0] >= 6
    for queue in (topology.queue("users.welcome"), topology.error_queue("users.welcome")):
        assert rabbitmq.count(queue) == 0
    assert [rabbitmq.count(topology.retry_queue("users.welcome", n)) for n in (1, 2)] == [0, 0]


def _bury(rabbitmq: Broker, topology: Topology, publisher: Callable[..., RabbitPublisher], count: int):
    """`count` messages in the error queue of "users.welcome", through a permanent error."""
    messages = [outgoing(n=n) for n in range(count)]
    publisher(topology).publish(messages)

    def unreadable(delivery: Delivery) -> None:
        raise Unreadable("not an envelope")

    consumer = RabbitConsumer(rabbitmq.url, topology, ["users.welcome"], unreadable, permanent=(Unreadable,))
    with running(consumer):
        wait_until(lambda: rabbitmq.count(topology.error_queue("users.welcome")) == count)
    return messages


def test_a_permanent_error_goes_to_the_error_queue_without_retries(rabbitmq, publisher):
    topology = rabbitmq.topology({"users.welcome": (REGISTERED,)}, retry_delays=(5.0,))
    [message] = _bury(rabbitmq, topology, publisher, 1)
    [buried] = dead_letters(rabbitmq.url, topology, "users.welcome")
    assert buried.message_id == message.event_id
    assert (buried.headers["x-retry-count"], buried.headers["x-error-type"]) == (0, f"{__name__}.Unreadable")
    assert rabbitmq.count(topology.retry_queue("users.welcome", 1)) == 0


def test_dead_letters_are_peeked_in_order_and_left_in_place(rabbitmq, publisher):
    topology = rabbitmq.topology({"users.welcome": (REGISTERED,)})
    messages = _bury(rabbitmq, topology, publisher, 3)
    ids = [message.event_id for message in messages]
    first = dead_letters(rabbitmq.url, topology, "users.welcome")
    assert [delivery.message_id for delivery in first] == ids
    assert [delivery.message_id for delivery in dead_letters(rabbitmq.url, topology, "users.welcome")] == ids
    assert [d.message_id for d in dead_letters(rabbitmq.url, topology, "users.welcome", limit=2)] == ids[:2]
    assert rabbitmq.count(topology.error_queue("users.welcome")) == 3


def test_replay_moves_the_error_queue_back_as_first_attempts(rabbitmq, publisher):
    topology = rabbitmq.topology({"users.welcome": (REGISTERED,), "auth.other": (REGISTERED,)})
    messages = _bury(rabbitmq, topology, publisher, 3)
    rabbitmq.take(topology.queue("auth.other"))
    assert replay(rabbitmq.url, topology, "users.welcome") == 3
    assert rabbitmq.count(topology.error_queue("users.welcome")) == 0
    assert rabbitmq.count(topology.queue("auth.other")) == 0  # only that subscriber's queue
    handler = Handler()
    with running(RabbitConsumer(rabbitmq.url, topology, ["users.welcome"], handler)):
        wait_until(lambda: len(handler.seen) == 3)
    assert sorted(d.message_id for d in handler.seen) == sorted(m.event_id for m in messages)
    assert {(d.attempt, d.type) for d in handler.seen} == {(1, REGISTERED)}
    headers = {name for delivery in handler.seen for name in delivery.headers}
    assert not any(name.startswith(("x-error", "x-retry", "x-death")) for name in headers), headers
    assert replay(rabbitmq.url, topology, "users.welcome") == 0


def test_a_worker_killed_on_a_message_gets_it_again_then_the_queue_dead_letters_it(
    rabbitmq, publisher, tmp_path
):
    topology = rabbitmq.topology({"users.welcome": (REGISTERED,)}, delivery_limit=1)
    message = outgoing()
    publisher(topology).publish([message])
    record = tmp_path / "deliveries.jsonl"
    args = [rabbitmq.url, rabbitmq.prefix, "users.welcome", REGISTERED, "1", str(record)]
    for _ in range(2):  # delivery limit 1: a first delivery and one more
        worker = subprocess.run(
            [sys.executable, "-m", "tests.contracts.event_transport.crashing_worker", *args],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            timeout=20,
            capture_output=True,
            text=True,
        )
        assert worker.returncode == -9, worker.stderr
    seen = [json.loads(line) for line in record.read_text().splitlines()]
    assert seen == [
        {"id": message.event_id, "redelivered": False, "attempt": 1},
        {"id": message.event_id, "redelivered": True, "attempt": 1},
    ]
    [buried] = wait_until(lambda: dead_letters(rabbitmq.url, topology, "users.welcome"))
    assert buried.message_id == message.event_id
    assert buried.headers["x-first-death-reason"] == "delivery_limit"
    assert rabbitmq.count(topology.queue("users.welcome")) == 0


def test_a_crash_on_one_message_does_not_count_against_those_behind_it(rabbitmq, publisher):
    topology = rabbitmq.topology({"users.welcome": (REGISTERED,)}, delivery_limit=1)
    poison, *fine = [outgoing(), outgoing(), outgoing(), outgoing()]
    publisher(topology).publish([poison, *fine])

    def crash(delivery: Delivery) -> None:
        if delivery.message_id == poison.event_id:
            raise Crash()

    handler = Handler(crash)
    for _ in range(2):
        with running(RabbitConsumer(rabbitmq.url, topology, ["users.welcome"], handler)) as run:
            run.thread.join(3)
        assert [type(error) for error in run.errors] == [Crash]
    with running(RabbitConsumer(rabbitmq.url, topology, ["users.welcome"], handler)):
        wait_until(lambda: len(handler.seen) == 5)
    assert [(d.message_id, d.redelivered) for d in handler.seen[:2]] == [
        (poison.event_id, False),
        (poison.event_id, True),
    ]
    # the others were never handed out while the worker kept dying: first deliveries
    assert [(d.message_id, d.redelivered) for d in handler.seen[2:]] == [(m.event_id, False) for m in fine]
    [buried] = wait_until(lambda: dead_letters(rabbitmq.url, topology, "users.welcome"))
    assert buried.message_id == poison.event_id


def test_stop_finishes_the_message_in_hand(rabbitmq, publisher):
    topology = rabbitmq.topology({"users.welcome": (REGISTERED,)})
    entered, release = threading.Event(), threading.Event()

    def slow(delivery: Delivery) -> None:
        entered.set()
        release.wait(5)

    handler = Handler(slow)
    first, second = outgoing(), outgoing()
    publisher(topology).publish([first, second])
    with running(RabbitConsumer(rabbitmq.url, topology, ["users.welcome"], handler)) as run:
        assert entered.wait(3)
        run.stop.set()
        time.sleep(0.3)
        assert run.thread.is_alive()  # still in the handler
        release.set()
        run.thread.join(3)
        assert not run.thread.is_alive()
    assert [d.message_id for d in handler.seen] == [first.event_id]
    assert [m.properties["message_id"] for m in rabbitmq.take(topology.queue("users.welcome"))] == [
        second.event_id
    ]


def test_prefetch_bounds_the_unacked_messages(rabbitmq, publisher):
    topology = rabbitmq.topology({"users.welcome": (REGISTERED,)})
    release = threading.Event()
    handler = Handler(lambda delivery: None if delivery.body == b"{}" else release.wait(5))
    events = publisher(topology)
    events.publish([Outgoing(event_id=str(uuid.uuid4()), type=REGISTERED, correlation_id="c", body=b"{}")])
    queue = topology.queue("users.welcome")
    with running(RabbitConsumer(rabbitmq.url, topology, ["users.welcome"], handler, prefetch=3)):
        wait_until(lambda: handler.seen)  # a first delivery handled: the prefetch opens to 3
        events.publish([outgoing(n=n) for n in range(10)])
        wait_until(lambda: len(handler.seen) == 2)
        time.sleep(0.3)
        assert rabbitmq.count(queue) == 10 - 3
        release.set()
        wait_until(lambda: len(handler.seen) == 11)
    assert rabbitmq.count(queue) == 0


def test_a_lost_connection_is_reconnected_and_logged_once(rabbitmq, publisher, proxy: TcpProxy, caplog):
    topology = rabbitmq.topology({"users.welcome": (REGISTERED,)})
    events = publisher(topology)
    handler = Handler()
    caplog.set_level("WARNING", logger="user_service.events")
    with running(RabbitConsumer(proxy.url, topology, ["users.welcome"], handler)):
        events.publish([outgoing()])
        wait_until(lambda: len(handler.seen) == 1)
        proxy.refusing = True
        proxy.cut()
        time.sleep(1.2)  # several failed attempts
        proxy.refusing = False
        events.publish([outgoing()])
        wait_until(lambda: len(handler.seen) == 2, timeout=4)
    lines = [record.getMessage() for record in caplog.records if record.name == "user_service.events"]
    assert [line.split()[0] for line in lines] == [
        "operation=rabbitmq.unreachable",
        "operation=rabbitmq.recovered",
    ], lines


def test_a_consumer_names_only_subscribers_of_the_topology():
    topology = Topology(prefix="p.", bindings={"users.welcome": (REGISTERED,)})
    with pytest.raises(ValueError, match="auth.nobody"):
        RabbitConsumer("amqp://", topology, ["auth.nobody"], lambda delivery: None)
