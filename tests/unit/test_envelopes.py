"""Events in envelopes: every domain event is registered and comes back from the JSON equal to
what went in; unknown and unreadable envelopes fail with their own errors (docs/events.md)."""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID, uuid4

import pytest

import domain.auth.events
import domain.subscriptions.events
import domain.users.events
from adapters.events.envelopes import EventRegistry, UnknownEvent, UnreadableEvent
from adapters.events.registry import REGISTRY
from domain.messages import Envelope, Event

ENVELOPE_KEYS = {
    "event_id",
    "type",
    "version",
    "occurred_at",
    "correlation_id",
    "causation_id",
    "locale",
    "payload",
}
EVENT_FIELDS = {"event_id", "occurred_at", "locale"}  # the envelope's, not the payload's


def subclasses(cls: type) -> set[type]:
    return {sub for direct in cls.__subclasses__() for sub in {direct, *subclasses(direct)}}


# Tests define events of their own; the service's are the domain's.
DOMAIN_EVENTS = sorted(
    (cls for cls in subclasses(Event) if cls.__module__.startswith("domain.")),
    key=lambda cls: (cls.__module__, cls.__qualname__),
)

_WORDS = {
    "plan": ["basic", "premium", "family"],
    "kind": ["login", "refresh", "logout", "refresh_reused"],
    "status": ["pending", "active", "expired", "cancelled"],
    "locale": ["en", "uk", "vi"],
}


def sample(faker, tp, name: str, *, full: bool):
    """A realistic value of type `tp` for a field called `name`; optional fields filled or None."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if not full and type(None) in args:
            return None
        return sample(faker, next(arg for arg in args if arg is not type(None)), name, full=full)
    if origin in (frozenset, set):
        if name == "roles":
            return frozenset(faker.random_elements(["user", "admin", "support"], unique=True))
        return origin(sample(faker, args[0], name, full=full) for _ in range(3))
    if origin is tuple:
        return tuple(sample(faker, args[0], name, full=full) for _ in range(3))
    if dataclasses.is_dataclass(tp):
        return build(faker, tp, full=full)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return faker.random_element(list(tp))
    if tp is UUID:
        return faker.uuid4(cast_to=None)
    if tp is datetime:  # microseconds, and an offset other than UTC, survive
        offset = timezone(timedelta(hours=faker.random_int(-11, 13)))
        return (
            faker.date_time_between("-1y", "+1y", tzinfo=UTC)
            .astimezone(offset)
            .replace(microsecond=faker.random_int(0, 999_999))
        )
    if tp is date:
        return faker.date_object()
    if tp is Decimal:
        return faker.pydecimal(left_digits=5, right_digits=2, positive=True)
    if tp is int:
        return faker.random_int(1, 10_000)
    if tp is bool:
        return faker.boolean()
    if tp is str:
        if "email" in name:
            return faker.email()
        if name == "client_address":
            return faker.ipv4()
        if name == "user_agent":
            return faker.user_agent()
        return faker.random_element(_WORDS[name]) if name in _WORDS else faker.word()
    pytest.fail(f"sample() cannot build a {tp!r} for {name!r}: teach it that type")


def build(faker, cls: type, *, full: bool = True):
    hints = typing.get_type_hints(cls)
    return cls(
        **{f.name: sample(faker, hints[f.name], f.name, full=full) for f in dataclasses.fields(cls) if f.init}
    )


def test_every_event_of_the_domain_is_registered() -> None:
    assert len(DOMAIN_EVENTS) >= 12
    missing = [cls.__qualname__ for cls in DOMAIN_EVENTS if cls not in REGISTRY]
    assert not missing, f"not in adapters/events/registry.py: {missing}"
    assert set(REGISTRY) == set(DOMAIN_EVENTS)


@pytest.mark.parametrize("full", [True, False], ids=["filled", "optionals-none"])
@pytest.mark.parametrize("cls", DOMAIN_EVENTS, ids=lambda cls: cls.__name__)
def test_each_event_comes_back_equal_through_the_json(faker, cls, full) -> None:
    event = build(faker, cls, full=full)
    correlation_id, causation_id = uuid4().hex, str(uuid4())

    envelope = REGISTRY.wrap(event, correlation_id=correlation_id, causation_id=causation_id)

    assert envelope.event_id == event.event_id
    assert (envelope.type, envelope.version) == (cls.__name__, cls.schema_version)
    assert envelope.occurred_at == event.occurred_at and envelope.locale == event.locale
    assert (envelope.correlation_id, envelope.causation_id) == (correlation_id, causation_id)
    own_fields = {f.name for f in dataclasses.fields(cls)} - EVENT_FIELDS
    assert set(json.loads(envelope.payload)) == own_fields

    read = REGISTRY.loads(REGISTRY.dumps(envelope))
    assert read == envelope
    back = REGISTRY.unwrap(read)
    assert type(back) is cls and back == event
    assert back.occurred_at.utcoffset() == event.occurred_at.utcoffset()


def test_the_json_has_exactly_the_documented_keys(faker) -> None:
    event = build(faker, domain.users.events.UserRolesChanged)
    data = json.loads(REGISTRY.dumps(REGISTRY.wrap(event, correlation_id="req-1")))

    assert set(data) == ENVELOPE_KEYS
    assert data["type"] == "UserRolesChanged" and data["version"] == 1
    assert data["event_id"] == str(event.event_id) and data["causation_id"] is None
    assert datetime.fromisoformat(data["occurred_at"]) == event.occurred_at  # with its offset
    assert datetime.fromisoformat(data["occurred_at"]).utcoffset() is not None
    payload = json.loads(data["payload"])
    assert payload["roles"] == sorted(event.roles)  # sets in a stable order


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Price:
    amount: Decimal
    valid_from: date


@dataclasses.dataclass(frozen=True, kw_only=True)
class Rich(Event):
    """Every kind of field an event may grow, beyond what today's events use."""

    price: Price
    colour: Colour
    tags: frozenset[int]
    lines: tuple[str, ...]
    previous: Price | None = None
    due: datetime | None = None


def test_richer_field_types_come_back_equal_too(faker) -> None:
    event = build(faker, Rich)
    registry = EventRegistry([Rich])

    back = registry.unwrap(registry.loads(registry.dumps(registry.wrap(event, correlation_id="c"))))

    assert back == event
    assert isinstance(back.price.amount, Decimal) and isinstance(back.colour, Colour)
    assert isinstance(back.tags, frozenset) and isinstance(back.lines, tuple)


def an_envelope(faker, **changes) -> Envelope:
    event = build(faker, domain.users.events.UserRegistered)
    return dataclasses.replace(REGISTRY.wrap(event, correlation_id="c"), **changes)


@pytest.mark.parametrize(("type_", "version"), [("NoSuchEvent", 1), ("UserRegistered", 2)])
def test_an_unregistered_type_or_version_is_an_unknown_event(faker, type_, version) -> None:
    with pytest.raises(UnknownEvent) as raised:
        REGISTRY.unwrap(an_envelope(faker, type=type_, version=version))
    assert (raised.value.type, raised.value.version) == (type_, version)


@pytest.mark.parametrize(
    "payload",
    [
        "not json",
        "[]",
        "{}",  # required fields missing
        '{"user_id": "not-a-uuid", "email": "ann@example.com"}',
        '{"user_id": "8d2c7e0a-7c1b-4c1e-9d59-0f4b1b2a6f10", "email": 42}',
    ],
)
def test_a_payload_that_does_not_decode_into_its_class_is_unreadable(faker, payload) -> None:
    with pytest.raises(UnreadableEvent, match="UserRegistered"):
        REGISTRY.unwrap(an_envelope(faker, payload=payload))
    assert issubclass(UnreadableEvent, ValueError)


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b'{"type": "UserRegistered"}',
        b'{"event_id": "8d2c7e0a-7c1b-4c1e-9d59-0f4b1b2a6f10", "type": "UserRegistered", "version": 1,'
        b' "occurred_at": "2026-01-01T00:00:00", "correlation_id": "c", "causation_id": null,'
        b' "locale": "en", "payload": "{}"}',  # no UTC offset
    ],
)
def test_bytes_that_are_not_an_envelope_are_unreadable(data) -> None:
    with pytest.raises(UnreadableEvent):
        REGISTRY.loads(data)


def test_an_event_outside_the_registry_is_not_wrapped(faker) -> None:
    with pytest.raises(UnknownEvent):
        EventRegistry([]).wrap(build(faker, Rich), correlation_id="c")


def test_two_classes_with_one_name_and_version_are_refused() -> None:
    def define():
        @dataclasses.dataclass(frozen=True, kw_only=True)
        class UserRegistered(Event):
            user_id: UUID

        return UserRegistered

    with pytest.raises(ValueError, match=r"domain\.users\.events\.UserRegistered and .*define"):
        EventRegistry([domain.users.events.UserRegistered, define()])


def test_a_new_schema_version_of_a_name_is_a_class_of_its_own(faker) -> None:
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class UserRegistered(Event):
        schema_version: typing.ClassVar[int] = 2
        user_id: UUID

    registry = EventRegistry([domain.users.events.UserRegistered, UserRegistered])
    old, new = build(faker, domain.users.events.UserRegistered), build(faker, UserRegistered)

    assert registry.unwrap(registry.wrap(old, correlation_id="c")) == old
    assert registry.unwrap(registry.wrap(new, correlation_id="c")) == new


def test_of_modules_collects_the_events_defined_there_only() -> None:
    registry = EventRegistry.of_modules(domain.users.events)
    assert set(registry) == {cls for cls in DOMAIN_EVENTS if cls.__module__ == "domain.users.events"}
    assert Event not in registry
