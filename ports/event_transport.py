"""Publishing durable events to a broker (the relay's side of the transport)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Outgoing:
    """An envelope on its way to the broker: its body is the envelope as JSON."""

    event_id: str
    type: str
    correlation_id: str
    body: bytes


class PublishFailed(Exception):
    """The broker did not confirm every message (a nack, an unroutable message, a timeout, a
    lost connection): nothing may be marked sent."""


class EventPublisher(Protocol):
    def publish(self, messages: Sequence[Outgoing]) -> None:
        """Returns only once the broker has confirmed every message; raises PublishFailed."""
        ...

    def close(self) -> None: ...
