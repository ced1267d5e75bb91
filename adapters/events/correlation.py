"""The correlation of the request or message being handled: ambient metadata, like a logging
context, that the unit of work stamps on every envelope it publishes.

A ContextVar rather than a parameter because it is not an input of any decision: handlers never
read it, and threading it through every command and handler signature would only carry it to
the one place (the envelope) that needs it. Each thread, and each asyncio task, sees its own
value, so concurrent requests never mix their ids.

`correlation_id` ties together everything one request or message caused; `causation_id` is the
id of the message that directly caused the current work (None for a request).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_CURRENT: ContextVar[tuple[str, str | None] | None] = ContextVar("correlation", default=None)


def new_id() -> str:
    return os.urandom(16).hex()  # as random as uuid4().hex, without building a UUID


def current() -> tuple[str, str | None]:
    """`(correlation_id, causation_id)`; outside any `use`, a fresh id of its own on each call
    (not stored: wrap work whose events belong together in `use(new_id())`)."""
    return _CURRENT.get() or (new_id(), None)


@contextmanager
def use(correlation_id: str, causation_id: str | None = None) -> Iterator[None]:
    """Make these the current ids until the block ends (then the previous ones again)."""
    token = _CURRENT.set((correlation_id, causation_id))
    try:
        yield
    finally:
        _CURRENT.reset(token)
