"""In-process, synchronous event bus on blinker signals (one signal per event type)."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from blinker import Namespace

from domain.messages import Event

log = logging.getLogger(__name__)

Subscriber = Callable[[Any], None]


def _signal_name(event_type: type) -> str:
    """By module and name: two contexts may each have an event class of the same name."""
    return f"{event_type.__module__}.{event_type.__qualname__}"


class BlinkerEventBus:
    """Calls each subscriber of the event's type (and base types) in turn.

    A failing subscriber does not stop the others. It is retried up to `attempts` times;
    when it still fails the delivery is dead-lettered: logged, counted and kept in
    `dead_letters`, never silently dropped.
    """

    def __init__(
        self,
        subscribers: Mapping[type, Iterable[Subscriber]],
        attempts: int = 3,
        on_dead_letter: Callable[[Event, str], None] | None = None,
    ) -> None:
        self._signals = Namespace()
        self._attempts = attempts
        self._on_dead_letter = on_dead_letter
        self.dead_letters: list[tuple[Event, str]] = []
        for event_type, handlers in subscribers.items():
            for handler in handlers:
                self.subscribe(event_type, handler)

    def subscribe(self, event_type: type[Event], handler: Subscriber) -> None:
        """Deliver events of `event_type` (and its subclasses) to `handler` from now on."""
        self._signals.signal(_signal_name(event_type)).connect(handler, weak=False)

    def publish(self, event: Event) -> None:
        for event_type in type(event).__mro__:
            signal = self._signals.get(_signal_name(event_type))
            if signal is None:
                continue
            # `receivers` keeps the order of connect() (receivers_for() walks a set); every
            # subscriber is connected for any sender, and strongly (a weak one is resolved).
            for receiver in list(signal.receivers.values()):
                handler = receiver() if isinstance(receiver, weakref.ref) else receiver
                if handler is not None:
                    self._deliver(handler, event)

    def _deliver(self, receiver: Subscriber, event: Event) -> None:
        target = getattr(receiver, "provides", receiver)  # a provider binding a handler: the handler
        name = f"{getattr(target, '__module__', '')}.{getattr(target, '__qualname__', repr(receiver))}"
        for attempt in range(1, self._attempts + 1):
            try:
                receiver(event)
                return
            except Exception:
                log.warning(
                    "operation=event.retry event=%s id=%s subscriber=%s attempt=%d",
                    type(event).__name__,
                    event.event_id,
                    name,
                    attempt,
                    exc_info=True,
                )
        log.error(
            "operation=event.dead_letter event=%s id=%s subscriber=%s",
            type(event).__name__,
            event.event_id,
            name,
        )
        self.dead_letters.append((event, name))
        if self._on_dead_letter is not None:
            self._on_dead_letter(event, name)
