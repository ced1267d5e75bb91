"""Base types for commands, events and translatable messages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID, uuid4

DEFAULT_LOCALE = "en"


@dataclass(frozen=True, kw_only=True)
class Command:
    """An instruction to change state; `locale` is the language of the person who sent it."""

    locale: str = DEFAULT_LOCALE


@dataclass(frozen=True, kw_only=True)
class Event:
    """Something that happened. Published only after the transaction that caused it commits.

    `schema_version` numbers the shape of a class's own fields as it travels in an Envelope:
    raise it when a field is renamed, removed or changes meaning (docs/events.md).
    """

    schema_version: ClassVar[int] = 1

    occurred_at: datetime
    locale: str = DEFAULT_LOCALE
    event_id: UUID = field(default_factory=uuid4)


@dataclass(frozen=True, kw_only=True)
class Envelope:
    """An event as it travels between processes (the DomainEventEnvelope, docs/events.md).

    `type` and `version` are the event class's name and schema_version; `payload` is the JSON
    text of the event's own fields (those of its class, not the Event fields above, which are
    the envelope's). `correlation_id` ties together everything one request or message caused;
    `causation_id` is the id of the message that directly caused this one, if any.
    """

    event_id: UUID
    type: str
    version: int
    occurred_at: datetime
    correlation_id: str
    causation_id: str | None
    locale: str
    payload: str


@dataclass(frozen=True)
class Message:
    """A user-facing text: an English catalog msgid with `{name}` placeholders and their values.

    The domain never renders text; the application translates `text` and then formats it.
    """

    text: str
    params: Mapping[str, Any] = field(default_factory=dict)
