"""Publishing domain events."""

from __future__ import annotations

from typing import Protocol

from domain.messages import Event


class EventBus(Protocol):
    """Delivers an event to every subscriber of its type (and of its base types)."""

    def publish(self, event: Event) -> None: ...
