"""A `limits` storage in the host's shared SQLite file (adapters.local.store): the login
throttle's moving windows, counted once for every process on the host, as Redis counts them
for every host.

A moving window is one row of `throttle_hits` per entry (its key, the time it was acquired
and when it leaves the window). Acquiring is one BEGIN IMMEDIATE transaction, so it is atomic
across processes: it drops the key's entries that left the window, counts the rest and adds
`amount` rows only while the count plus `amount` stays within the limit. The window is read
with one SELECT through the (key, at) index, never taking the write lock.

The fixed window counters of the Storage interface (`incr`, `get`, `get_expiry`) are rows of
`throttle_counters`, one upsert each; the login throttle does not use them.

Rows leave in two ways, both through an index: a key's expired entries when the key is next
acquired, and now and then (one acquire or increment in `sweep_every`, on average) every
expired row of both tables, for the keys nobody hits again.

An entry is in the window while `at >= now - expiry` and the window's start is its oldest entry,
as with limits' Redis storage; its memory storage agrees except for an entry exactly on that
edge. Errors are sqlite3.Error, wrapped in limits.errors.StorageError by default (what the
login throttle meets with its in-process fallback).
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable

from limits.storage import MovingWindowSupport, Storage

from adapters.local.store import ERRORS, LocalStore

_SWEEP_EVERY = 256  # writes, on average, between two removals of every expired row

# ?1 key, ?2 the window's start (now - expiry).
_DROP_LEFT = "DELETE FROM throttle_hits WHERE key = ?1 AND at < ?2"
_WINDOW = "SELECT COUNT(*), MIN(at) FROM throttle_hits WHERE key = ?1 AND at >= ?2"
_ADD = "INSERT INTO throttle_hits (key, at, expires_at) VALUES (?, ?, ?)"
# ?1 key, ?2 amount, ?3 now, ?4 expiry: a counter that expired starts again from `amount`.
_INCR = """
INSERT INTO throttle_counters (key, count, expires_at) VALUES (?1, ?2, ?3 + ?4)
ON CONFLICT (key) DO UPDATE SET
    count = CASE WHEN expires_at <= ?3 THEN excluded.count ELSE count + excluded.count END,
    expires_at = CASE WHEN expires_at <= ?3 THEN excluded.expires_at ELSE expires_at END
RETURNING count
"""
_COUNTER = "SELECT count, expires_at FROM throttle_counters WHERE key = ?1 AND expires_at > ?2"
_KEYS = "SELECT COUNT(*) FROM (SELECT key FROM throttle_hits UNION SELECT key FROM throttle_counters)"


class SqliteLimitsStorage(Storage, MovingWindowSupport):
    """`now` comes from `clock`, as in the other stores, so tests can drive it. Built from a
    LocalStore rather than a storage URI, so it registers no scheme with limits' registry
    (`limits.storage.storage_from_string` does not know it): construct it directly."""

    STORAGE_SCHEME = None

    def __init__(
        self,
        store: LocalStore,
        clock: Callable[[], float] = time.time,
        *,
        sweep_every: int = _SWEEP_EVERY,
        wrap_exceptions: bool = True,
    ) -> None:
        if sweep_every < 1:
            raise ValueError("sweep_every must be at least 1")
        super().__init__(None, wrap_exceptions=wrap_exceptions)
        self._store = store
        self._clock = clock
        self._sweep_every = sweep_every

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return sqlite3.Error

    # The moving window

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        if amount > limit:
            return False
        now = self._clock()
        start = now - expiry
        with self._store.transaction() as connection:
            connection.execute(_DROP_LEFT, (key, start))
            count = connection.execute(_WINDOW, (key, start)).fetchone()[0]
            acquired = count + amount <= limit
            if acquired and amount > 0:
                connection.executemany(_ADD, [(key, now, now + expiry)] * amount)
            self._maybe_sweep(connection, now)
        return acquired

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        now = self._clock()
        count, oldest = self._store.connection().execute(_WINDOW, (key, now - expiry)).fetchone()
        return (oldest, count) if count else (now, 0)

    # Fixed window counters

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = self._clock()
        with self._store.transaction() as connection:
            [(count,)] = connection.execute(_INCR, (key, amount, now, expiry)).fetchall()
            self._maybe_sweep(connection, now)
        return int(count)

    def get(self, key: str) -> int:
        row = self._store.connection().execute(_COUNTER, (key, self._clock())).fetchone()
        return 0 if row is None else int(row[0])

    def get_expiry(self, key: str) -> float:
        now = self._clock()
        row = self._store.connection().execute(_COUNTER, (key, now)).fetchone()
        return now if row is None else float(row[1])

    # Both

    def clear(self, key: str) -> None:
        with self._store.transaction() as connection:
            connection.execute("DELETE FROM throttle_hits WHERE key = ?", (key,))
            connection.execute("DELETE FROM throttle_counters WHERE key = ?", (key,))

    def reset(self) -> int | None:
        """Empties both tables for every process on the host; returns how many keys they held."""
        with self._store.transaction() as connection:
            (keys,) = connection.execute(_KEYS).fetchone()
            connection.execute("DELETE FROM throttle_hits")
            connection.execute("DELETE FROM throttle_counters")
        return int(keys)

    def check(self) -> bool:
        try:
            self._store.connection().execute("SELECT 1 FROM throttle_hits LIMIT 1").fetchall()
        except ERRORS:
            return False
        return True

    def sweep(self) -> None:
        """Removes every expired row of both tables (what writes do now and then)."""
        with self._store.transaction() as connection:
            self._sweep(connection, self._clock())

    def _maybe_sweep(self, connection: sqlite3.Connection, now: float) -> None:
        if random.random() * self._sweep_every < 1:
            self._sweep(connection, now)

    @staticmethod
    def _sweep(connection: sqlite3.Connection, now: float) -> None:
        connection.execute("DELETE FROM throttle_hits WHERE expires_at < ?", (now,))
        connection.execute("DELETE FROM throttle_counters WHERE expires_at <= ?", (now,))
