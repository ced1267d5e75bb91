"""Two steps run at a chosen interleaving: one is held at a point of its own (a call of a port
of its worker's container) while the other runs to its end, then let go; and the check that an
outcome is one a serial order of the two gives (linearizability of the pair).

The points are installed by overriding a provider of one app's container (handlers and
consumers resolve their ports on every call, so an override reaches them at once); a point
holds only the thread of the step it was made for, and only once.
"""

from __future__ import annotations

import pprint
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from dependency_injector import providers

HOLD_WITHIN = 15  # seconds a step may take to reach its point, or to finish once let go


class Point:
    """Where the held step stops: `hold()` is called there, on every thread; it stops only the
    step's own thread (`thread`), the first time `when` says so, until `go` is set."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.thread: int | None = None
        self.reached, self.go = threading.Event(), threading.Event()

    def hold(self) -> None:
        if threading.get_ident() != self.thread or self.reached.is_set():
            return
        self.reached.set()
        if not self.go.wait(HOLD_WITHIN):
            raise AssertionError(f"held {self.where} and never let go")


class _Through:
    """A port object with a point in front of (or behind) one of its methods."""

    def __init__(self, inner: Any, method: str, point: Point, when: Callable[..., bool], after: bool) -> None:
        self._inner, self._method, self._point, self._when, self._after = inner, method, point, when, after

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._inner, name)
        if name != self._method:
            return found

        def through(*args: Any, **kwargs: Any) -> Any:
            chosen = self._when(*args, **kwargs)
            if chosen and not self._after:
                self._point.hold()
            result = found(*args, **kwargs)
            if chosen and self._after:
                self._point.hold()
            return result

        return through


@contextmanager
def held_at(
    provider: providers.Provider,
    method: str,
    where: str,
    *,
    when: Callable[..., bool] = lambda *args, **kwargs: True,
    after: bool = False,
) -> Iterator[Point]:
    """A point before (`after`: behind) `method` of what `provider`, a Singleton or Selector of
    one app's container, serves, for the calls `when` accepts."""
    point = Point(where)
    inner = provider()
    provider.override(providers.Object(_Through(inner, method, point, when, after)))
    try:
        yield point
    finally:
        point.go.set()
        provider.reset_last_overriding()


class _HoldOnLeaving:
    """A unit of work whose end (its transaction over, its connection given back) is a point."""

    def __init__(self, inner: Any, point: Point) -> None:
        self._inner, self._point = inner, point

    def __enter__(self) -> Any:
        return self._inner.__enter__()

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self._inner.__exit__(*exc_info)
        finally:
            self._point.hold()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@contextmanager
def held_after_reading(units_of_work: providers.Selector, where: str) -> Iterator[Point]:
    """A point after the first unit of work from `units_of_work` (a Factory Selector) ends."""
    point = Point(where)
    chosen = units_of_work.providers[units_of_work.selector()]
    units_of_work.override(providers.Callable(lambda: _HoldOnLeaving(chosen(), point)))
    try:
        yield point
    finally:
        point.go.set()
        units_of_work.reset_last_overriding()


def interleaved(point: Point, held: Callable[[], None], meanwhile: Callable[[], None]) -> None:
    """`held` runs on a thread of its own until it reaches `point`; then `meanwhile` runs to its
    end on another; then `held` is let go and finishes. A step's exception is raised here."""
    errors: list[BaseException] = []

    def run(step: Callable[[], None], is_held: bool) -> None:
        if is_held:
            point.thread = threading.get_ident()
        try:
            step()
        except BaseException as error:
            errors.append(error)

    first = threading.Thread(target=run, args=(held, True))
    first.start()
    try:
        deadline = time.monotonic() + HOLD_WITHIN
        while not point.reached.wait(0.005) and first.is_alive() and time.monotonic() < deadline:
            pass
        if errors:
            raise errors[0]
        assert point.reached.is_set(), f"the held step never got {point.where}"
        second = threading.Thread(target=run, args=(meanwhile, False))
        second.start()
        second.join(HOLD_WITHIN)
        assert not second.is_alive(), f"the other step could not finish while one was held {point.where}"
    finally:
        point.go.set()
        first.join(HOLD_WITHIN)
    assert not first.is_alive(), f"the held step did not finish once let go {point.where}"
    if errors:
        raise errors[0]


def assert_one_of(pair: str, interleaving: str, observed: Mapping, serial: Mapping[str, Mapping]) -> None:
    """`observed` must equal the outcome of one of the `serial` orders (by name)."""
    if any(dict(observed) == dict(outcome) for outcome in serial.values()):
        return
    lines = [f"{pair}, {interleaving}: the outcome is none that a serial order gives.", "Observed:"]
    lines.append(pprint.pformat(dict(observed), sort_dicts=False, width=110))
    for order, outcome in serial.items():
        lines.append(f"Unlike {order}, which gives:")
        lines += [
            f"  {key}: {outcome.get(key)!r} (observed {observed.get(key)!r})"
            for key in {**outcome, **observed}
            if outcome.get(key) != observed.get(key)
        ]
    raise AssertionError("\n".join(lines))
