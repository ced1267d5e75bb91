"""Base types for commands, events and translatable messages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

DEFAULT_LOCALE = "en"


@dataclass(frozen=True, kw_only=True)
class Command:
    """An instruction to change state; `locale` is the language of the person who sent it."""

    locale: str = DEFAULT_LOCALE


@dataclass(frozen=True, kw_only=True)
class Event:
    """Something that happened. Published only after the transaction that caused it commits."""

    occurred_at: datetime
    locale: str = DEFAULT_LOCALE
    event_id: UUID = field(default_factory=uuid4)


@dataclass(frozen=True)
class Message:
    """A user-facing text: an English catalog msgid with `{name}` placeholders and their values.

    The domain never renders text; the application translates `text` and then formats it.
    """

    text: str
    params: Mapping[str, Any] = field(default_factory=dict)
