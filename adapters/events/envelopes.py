"""Events in and out of their Envelope, and the envelope as JSON bytes (docs/events.md).

msgspec does the JSON and the typed decoding: a payload is converted back into the event's
dataclass field by field (UUID, datetime, date, Decimal, enums, frozenset and tuple, nested
dataclasses, optional fields), so what comes out equals what went in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from types import ModuleType
from typing import Any

import msgspec

from domain.messages import Envelope, Event

# The Event fields travel in the envelope itself, not in the payload.
_ENVELOPE_FIELDS = frozenset(f.name for f in dataclasses.fields(Event))
_JSON = msgspec.json.Encoder()


class UnknownEvent(LookupError):
    """No class is registered for this type and version: a message from a newer (or retired)
    schema. Not the message's fault; a consumer parks it rather than dropping it."""

    def __init__(self, type: str, version: int) -> None:
        super().__init__(f"no event class registered for {type!r} version {version}")
        self.type = type
        self.version = version


class UnreadableEvent(ValueError):
    """The bytes are not an envelope, or its payload does not decode into its event class."""


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class EventRegistry:
    """The event classes a process can read, by (class name, schema_version)."""

    def __init__(self, events: Iterable[type[Event]]) -> None:
        self._classes: dict[tuple[str, int], type[Event]] = {}
        for cls in events:
            if not (isinstance(cls, type) and issubclass(cls, Event) and dataclasses.is_dataclass(cls)):
                raise TypeError(f"{cls!r} is not an Event dataclass")
            key = (cls.__name__, cls.schema_version)
            known = self._classes.setdefault(key, cls)
            if known is not cls:
                raise ValueError(
                    f"{_name(known)} and {_name(cls)} are both event {key[0]!r} version {key[1]}"
                )

    @classmethod
    def of_modules(cls, *modules: ModuleType) -> EventRegistry:
        """Every Event subclass defined in these modules (not those they import)."""
        return cls(
            value
            for module in modules
            for value in vars(module).values()
            if isinstance(value, type)
            and issubclass(value, Event)
            and value is not Event
            and value.__module__ == module.__name__
        )

    def __contains__(self, cls: object) -> bool:
        return (
            isinstance(cls, type)
            and issubclass(cls, Event)
            and self._classes.get((cls.__name__, cls.schema_version)) is cls
        )

    def __iter__(self) -> Iterator[type[Event]]:
        return iter(self._classes.values())

    def __len__(self) -> int:
        return len(self._classes)

    def wrap(self, event: Event, *, correlation_id: str, causation_id: str | None = None) -> Envelope:
        if type(event) not in self:
            raise UnknownEvent(type(event).__name__, type(event).schema_version)
        if event.occurred_at.utcoffset() is None:
            raise ValueError(f"{type(event).__name__}.occurred_at has no UTC offset")
        fields = msgspec.to_builtins(event, order="deterministic")  # sets as sorted lists
        payload = {name: value for name, value in fields.items() if name not in _ENVELOPE_FIELDS}
        return Envelope(
            event_id=event.event_id,
            type=type(event).__name__,
            version=type(event).schema_version,
            occurred_at=event.occurred_at,
            correlation_id=correlation_id,
            causation_id=causation_id,
            locale=event.locale,
            payload=_JSON.encode(payload).decode(),
        )

    def unwrap(self, envelope: Envelope) -> Event:
        cls = self._classes.get((envelope.type, envelope.version))
        if cls is None:
            raise UnknownEvent(envelope.type, envelope.version)
        try:
            fields: Any = msgspec.json.decode(envelope.payload)
            if not isinstance(fields, dict):
                raise UnreadableEvent(f"{envelope.type} payload is not a JSON object")
            fields.update(
                event_id=envelope.event_id, occurred_at=envelope.occurred_at, locale=envelope.locale
            )
            return msgspec.convert(fields, cls)
        except msgspec.MsgspecError as error:
            raise UnreadableEvent(f"{envelope.type} version {envelope.version}: {error}") from error

    def dumps(self, envelope: Envelope) -> bytes:
        return _JSON.encode(envelope)

    def loads(self, data: bytes) -> Envelope:
        try:
            envelope = msgspec.json.decode(data, type=Envelope)
        except msgspec.MsgspecError as error:
            raise UnreadableEvent(f"not an event envelope: {error}") from error
        if envelope.occurred_at.utcoffset() is None:
            raise UnreadableEvent("not an event envelope: occurred_at has no UTC offset")
        return envelope
