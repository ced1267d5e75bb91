"""The repairs a command's writes owe the caches, and the wait for them (DESIGN §5, §10).

A write whose invalidation or session-state write the server did not take leaves a repair
pending in the process that made it (`Resilient`), retried until it lands. Until then another
process that reaches the server (a paused Redis resumed, a partition healed, a replica that did
not see it) reads what the write replaced: a logged-out session, old roles, old fields. So a
command is acknowledged only once its repairs have landed: `owed()` collects what the writes
made inside it left pending, and `Owed.settle(within)` tries those stores again until nothing
of it is pending or the time is up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol


class Repairable(Protocol):
    def repair(self) -> bool:
        """Try every pending repair now, whatever the circuit says; True when none is left."""

    def pending_among(self, keys: Iterable[Hashable]) -> bool:
        """Whether any of `keys` is still pending."""


class Owed:
    """The repairs left pending by the writes of one command, store by store."""

    def __init__(self) -> None:
        self._owed: dict[Repairable, set[Hashable]] = {}

    def add(self, store: Repairable, keys: Iterable[Hashable]) -> None:
        self._owed.setdefault(store, set()).update(keys)

    def outstanding(self) -> list[Repairable]:
        """The stores that still hold a repair of this command."""
        return [store for store, keys in self._owed.items() if store.pending_among(keys)]

    def settle(
        self,
        within: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> bool:
        """Try the outstanding repairs until none is left (True) or `within` seconds have
        passed (False): 0.05 s between tries, doubling up to 0.5 s, the last at the deadline."""
        deadline = monotonic() + within
        pause = 0.05
        while stores := self.outstanding():
            for store in stores:
                store.repair()
            if not self.outstanding():
                return True
            left = deadline - monotonic()
            if left <= 0:
                return False
            sleep(min(pause, left))  # the last try at the deadline
            pause = min(pause * 2, 0.5)
        return True


_owed: ContextVar[Owed | None] = ContextVar("cache_repairs_owed", default=None)


@contextmanager
def owed() -> Iterator[Owed]:
    """Collect the repairs the writes made in this block (in this thread) leave pending."""
    collected = Owed()
    token = _owed.set(collected)
    try:
        yield collected
    finally:
        _owed.reset(token)


def owe(store: Repairable, keys: Iterable[Hashable]) -> None:
    """`store` could not apply these keys' writes: the command under way owes their repair."""
    collected = _owed.get()
    if collected is not None:
        collected.add(store, keys)
