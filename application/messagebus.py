"""Dispatches commands and queries to their one handler."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

# A handler or event consumer as the message maps hold it: the message, then the ports it names
# as keyword arguments.
Handler = Callable[..., object]


class MessageBus:
    """`handlers` maps a message type to a callable taking just the message: the composition
    root has already bound each handler's ports."""

    def __init__(self, handlers: Mapping[type, Callable[[Any], Any]]) -> None:
        self._handlers = dict(handlers)

    def handle(self, message: object) -> Any:
        try:
            handler = self._handlers[type(message)]
        except KeyError:
            raise LookupError(f"no handler for {type(message).__name__}") from None
        return handler(message)
