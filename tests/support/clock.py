"""A clock the tests set by hand, for the adapters that take one."""

from __future__ import annotations


class SettableClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
