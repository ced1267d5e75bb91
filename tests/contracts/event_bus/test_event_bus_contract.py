"""One contract for EventBus (ports/event_bus.py), run against every way BlinkerEventBus gets its
subscribers: who gets an event (its type's subscribers and its base types', nobody else's), in
which order, and what a failing subscriber costs (retried, then dead-lettered: logged, kept,
the others still delivered; STYLE: never silently dropped)."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC

import pytest
from faker import Faker

from adapters.blinker_bus import BlinkerEventBus
from domain.messages import Event
from tests.contracts.event_bus.conftest import Backend


@dataclass(frozen=True, kw_only=True)
class AccountEvent(Event):
    account: str = ""


@dataclass(frozen=True, kw_only=True)
class Registered(AccountEvent):
    pass


@dataclass(frozen=True, kw_only=True)
class Deleted(AccountEvent):
    pass


@dataclass(frozen=True, kw_only=True)
class Unrelated(Event):
    pass


class Boom(Exception):
    pass


class Calls:
    """Subscribers that record what they were given, in the order they were given it."""

    def __init__(self) -> None:
        self.got: list[tuple[str, Event]] = []  # deliveries that succeeded
        self.tried: list[str] = []  # every call, failed ones too

    def subscriber(self, name: str, *, failures: int = 0) -> Callable[[Event], None]:
        """Raises Boom on its first `failures` calls, then records the event."""
        attempts = itertools.count(1)

        def receive(event: Event) -> None:
            self.tried.append(name)
            if next(attempts) <= failures:
                raise Boom(name)
            self.got.append((name, event))

        receive.__qualname__ = f"subscriber.{name}"
        return receive

    def names(self) -> list[str]:
        return [name for name, _ in self.got]


ALWAYS = 10**9  # failures: a subscriber that never succeeds


def full_name(subscriber: Callable) -> str:
    return f"{subscriber.__module__}.{subscriber.__qualname__}"


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def event(faker: Faker) -> Callable[..., Event]:
    def make(kind: type[Event] = Registered) -> Event:
        occurred_at = faker.date_time_between("-1y", "now", tzinfo=UTC)
        if issubclass(kind, AccountEvent):
            return kind(occurred_at=occurred_at, account=faker.email())
        return kind(occurred_at=occurred_at)

    return make


# --- who gets an event ----------------------------------------------------------------------


def test_every_subscriber_of_the_events_type_gets_it_once_and_no_other(backend: Backend, calls, event):
    bus = backend.make(
        {
            Registered: [calls.subscriber("a"), calls.subscriber("b"), calls.subscriber("c")],
            Deleted: [calls.subscriber("deleted")],
            Unrelated: [calls.subscriber("unrelated")],
        }
    )
    registered = event(Registered)

    bus.publish(registered)

    assert sorted(calls.got, key=lambda got: got[0]) == [
        ("a", registered),
        ("b", registered),
        ("c", registered),
    ]
    assert bus.dead_letters == []


def test_subscribers_of_a_base_type_get_the_events_of_its_subtypes(backend: Backend, calls, event):
    bus = backend.make(
        {
            Event: [calls.subscriber("any")],
            AccountEvent: [calls.subscriber("account")],
            Registered: [calls.subscriber("registered")],
        }
    )
    registered, deleted, account = event(Registered), event(Deleted), event(AccountEvent)

    for published in (registered, deleted, account):
        bus.publish(published)

    got = {(name, type(e).__name__) for name, e in calls.got}
    assert got == {
        ("registered", "Registered"),
        ("account", "Registered"),
        ("any", "Registered"),
        ("account", "Deleted"),
        ("any", "Deleted"),
        ("account", "AccountEvent"),
        ("any", "AccountEvent"),
    }
    assert len(calls.got) == len(got)  # each once


def test_an_event_of_a_type_nobody_subscribed_to_reaches_nobody(backend: Backend, calls, event):
    bus = backend.make({Registered: [calls.subscriber("registered")], Deleted: []})

    bus.publish(event(Unrelated))
    bus.publish(event(Deleted))
    bus.publish(event(AccountEvent))  # a base type of the subscribed one: not a subtype

    assert calls.tried == [] and bus.dead_letters == []


def test_publishing_with_no_subscribers_at_all_does_nothing(backend: Backend, event):
    bus = backend.make({})
    bus.publish(event(Registered))
    bus.publish(event(Unrelated))
    assert bus.dead_letters == []


def test_a_type_with_the_same_name_as_a_subscribed_one_is_another_type(backend: Backend, calls, event):
    """Two contexts may each have an event called `Registered`: a subscriber of one is not a
    subscriber of the other."""
    elsewhere = type("Registered", (Event,), {"__module__": "domain.elsewhere.events"})
    bus = backend.make({Registered: [calls.subscriber("ours")], Deleted: [calls.subscriber("deleted")]})

    bus.publish(elsewhere(occurred_at=event().occurred_at))

    assert calls.tried == []


def test_a_subscriber_may_publish_while_it_is_being_delivered_to(backend: Backend, calls, event):
    """A consumer's unit of work publishes what its own change caused while the bus is still
    delivering the event that caused it."""
    buses: list[BlinkerEventBus] = []
    deleted = event(Deleted)

    def cascade(published: Event) -> None:
        calls.got.append(("cascade", published))
        buses[0].publish(deleted)

    bus = backend.make({Registered: [cascade], Deleted: [calls.subscriber("deleted")]})
    buses.append(bus)
    registered = event(Registered)

    bus.publish(registered)

    assert calls.got == [("cascade", registered), ("deleted", deleted)]


# --- order ----------------------------------------------------------------------------------


def test_subscribers_of_the_events_own_type_come_before_those_of_its_base_types(
    backend: Backend, calls, event
):
    bus = backend.make(
        {
            Event: [calls.subscriber("any")],
            AccountEvent: [calls.subscriber("account")],
            Registered: [calls.subscriber("registered")],
        }
    )

    bus.publish(event(Registered))

    assert calls.names() == ["registered", "account", "any"]


def test_subscribers_of_one_type_are_called_in_the_order_they_were_given(backend: Backend, calls, event):
    names = [f"s{i:02}" for i in range(30)]
    bus = backend.make({Registered: [calls.subscriber(name) for name in names]})

    bus.publish(event(Registered))

    assert calls.names() == names


def test_events_are_delivered_in_the_order_they_are_published(backend: Backend, calls, event):
    bus = backend.make({AccountEvent: [calls.subscriber("account")]})
    published = [event(Registered), event(Deleted), event(Registered)]

    for each in published:
        bus.publish(each)

    assert [e for _, e in calls.got] == published


# --- failing subscribers --------------------------------------------------------------------


def test_a_failing_subscriber_is_retried_then_dead_lettered_and_the_others_still_get_the_event(
    backend: Backend, calls, event, caplog
):
    failing = calls.subscriber("failing", failures=ALWAYS)
    noticed: list[tuple[Event, str]] = []
    bus = backend.make(
        {
            Registered: [calls.subscriber("before"), failing, calls.subscriber("after")],
            AccountEvent: [calls.subscriber("account")],
        },
        attempts=3,
        on_dead_letter=lambda e, name: noticed.append((e, name)),
    )
    registered = event(Registered)

    with caplog.at_level(logging.WARNING, logger="adapters.blinker_bus"):
        bus.publish(registered)

    assert sorted(calls.names()) == ["account", "after", "before"]
    assert calls.tried.count("failing") == 3
    assert bus.dead_letters == noticed == [(registered, full_name(failing))]
    retries = [r for r in caplog.records if "operation=event.retry" in r.getMessage()]
    dead = [r for r in caplog.records if "operation=event.dead_letter" in r.getMessage()]
    assert [r.levelno for r in retries] == [logging.WARNING] * 3
    assert all(r.exc_info and r.exc_info[0] is Boom for r in retries)
    assert [r.levelno for r in dead] == [logging.ERROR]
    assert str(registered.event_id) in dead[0].getMessage()
    assert full_name(failing) in dead[0].getMessage()


@pytest.mark.parametrize("attempts", [1, 2, 5])
def test_a_subscriber_is_tried_attempts_times_and_only_it_is_retried(
    backend: Backend, calls, event, attempts
):
    failing = calls.subscriber("failing", failures=ALWAYS)
    bus = backend.make({Registered: [calls.subscriber("ok"), failing]}, attempts=attempts)
    registered = event(Registered)

    bus.publish(registered)

    assert calls.tried.count("failing") == attempts
    assert calls.tried.count("ok") == 1
    assert bus.dead_letters == [(registered, full_name(failing))]


def test_a_subscriber_that_succeeds_on_a_retry_is_delivered_once_and_not_dead_lettered(
    backend: Backend, calls, event, caplog
):
    bus = backend.make({Registered: [calls.subscriber("flaky", failures=2)]}, attempts=3)
    registered = event(Registered)

    with caplog.at_level(logging.WARNING, logger="adapters.blinker_bus"):
        bus.publish(registered)

    assert calls.got == [("flaky", registered)] and calls.tried == ["flaky"] * 3
    assert bus.dead_letters == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_every_dead_letter_is_kept(backend: Backend, calls, event):
    first, second = calls.subscriber("first", failures=ALWAYS), calls.subscriber("second", failures=ALWAYS)
    bus = backend.make({Registered: [first], AccountEvent: [second]}, attempts=1)
    one, two = event(Registered), event(Registered)

    bus.publish(one)
    bus.publish(two)

    # Per event, its own type's subscribers first (see the order tests).
    assert bus.dead_letters == [
        (one, full_name(first)),
        (one, full_name(second)),
        (two, full_name(first)),
        (two, full_name(second)),
    ]
