"""Operations run at once: one thread each, released together by a barrier."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class Outcome(Generic[T]):
    """What the racers returned, and what they raised, each in the order they finished."""

    results: list[T] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)


def race(*operations: Callable[[], T], start_within: float = 10, join_within: float = 30) -> Outcome[T]:
    """Runs each operation on a thread of its own, all released at once, and waits for them.

    A racer's exception, a failed assertion included, is collected rather than lost with its
    thread; so is the barrier's when the racers did not all start within `start_within` seconds.
    Each thread is given `join_within` seconds to end, and the race fails if one has not.
    """
    start = threading.Barrier(len(operations))
    outcome: Outcome[T] = Outcome()

    def run(operation: Callable[[], T]) -> None:
        try:
            start.wait(start_within)
            outcome.results.append(operation())
        except BaseException as error:
            outcome.errors.append(error)

    threads = [threading.Thread(target=run, args=(operation,)) for operation in operations]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(join_within)
    running = sum(thread.is_alive() for thread in threads)
    assert not running, f"{running} of {len(threads)} racers still running after {join_within} s"
    return outcome
