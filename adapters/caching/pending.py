"""Writes a resilient decorator could not make, kept until the server takes them (DESIGN §5).

A key whose write failed is pending, with the sequence number of its latest failed try. A flush
reads the pending keys with their numbers, tries them, and then drops only the keys whose number
is still the one it read: a key that failed again meanwhile (in another thread) stays pending for
the next flush. A Retrier thread flushes until nothing is left.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class Retrier:
    """A daemon thread that calls `flush` every `interval` seconds until it succeeds (True) and,
    under the owner's `lock`, nothing is `pending` any more; then `done`. Starting it while it
    runs does nothing."""

    def __init__(
        self,
        name: str,
        interval: float,
        *,
        flush: Callable[[], bool],
        pending: Callable[[], bool],
        lock: threading.Lock,
        done: Callable[[], None],
    ) -> None:
        self._name, self._interval = name, interval
        self._flush, self._pending, self._lock, self._done = flush, pending, lock, done
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def _run(self) -> None:
        pause = threading.Event()
        while True:
            pause.wait(self._interval)
            if not self._flush():
                continue
            with self._lock:
                if self._pending():  # failed again meanwhile
                    continue
                self._thread = None
            self._done()
            return


class Pending(Generic[K]):
    """The keys whose write failed, and the Retrier thread (named `name`) that calls `flush`
    every `interval` seconds until none is left, then `done`. `key in pending` and
    `bool(pending)` read without the lock: a hint for the hot path, which a flush confirms."""

    def __init__(
        self, name: str, interval: float, *, flush: Callable[[], bool], done: Callable[[], None]
    ) -> None:
        self._lock = threading.Lock()
        self._sequences: dict[K, int] = {}  # key -> sequence number of its latest failed try
        self._sequence = itertools.count()
        self._retrier = Retrier(
            name,
            interval,
            flush=flush,
            pending=lambda: bool(self._sequences),
            lock=self._lock,
            done=done,
        )

    def __bool__(self) -> bool:
        return bool(self._sequences)

    def __contains__(self, key: object) -> bool:
        return key in self._sequences

    def keys(self) -> frozenset[K]:
        with self._lock:
            return frozenset(self._sequences)

    def add(self, *keys: K) -> None:
        """Mark `keys` failed (again): a flush already under way will leave them pending."""
        with self._lock:
            for key in keys:
                self._sequences[key] = next(self._sequence)

    def batch(self, keys: Iterable[K] | None = None) -> dict[K, int]:
        """The pending keys (of `keys` only, when given) with their sequence numbers: what a
        flush tries, and then gives to `settle`."""
        with self._lock:
            wanted = self._sequences if keys is None else keys
            return {key: self._sequences[key] for key in wanted if key in self._sequences}

    def settle(self, batch: Mapping[K, int]) -> bool:
        """Drop the keys of `batch`, a part of one that was applied, that have not failed again
        since it was taken; True when no key is left pending."""
        with self._lock:
            for key, sequence in batch.items():
                if self._sequences.get(key) == sequence:
                    del self._sequences[key]
            return not self._sequences

    def retry(self) -> None:
        """Start the retry thread, unless it is running."""
        self._retrier.start()
