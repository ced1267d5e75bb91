"""A UserStateStore in the host's shared SQLite file (adapters.local.store).

One row per user: per group its encoded value and version (adapters.caching.state_codec, the
same bytes as in Redis), the entry's creation time and its expiry. A write is one BEGIN
IMMEDIATE transaction comparing the version of every group it carries (compare-and-set per
group, atomic across processes); a read is one SELECT and slides the expiry with an UPDATE
only when that moves it on by more than a hundredth of the sliding TTL, so a busy session
costs one write every ~18 s rather than one per request.
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
import time
from collections.abc import Callable
from uuid import UUID

from adapters.caching import metrics
from adapters.caching import state_codec as codec
from adapters.local.store import LocalStore
from domain.session_state.model import ABSOLUTE_TTL, SLIDING_TTL, Group, UserState, Versioned

_GROUPS = tuple(Group)
_COLUMNS = ", ".join(f"{g.value}, {g.value}_v" for g in _GROUPS)
_READ = f"SELECT created_at, expires_at, {_COLUMNS} FROM user_states WHERE user_id = ?"  # noqa: S608
_SLIDE = "UPDATE user_states SET expires_at = ? WHERE user_id = ? AND created_at = ? AND expires_at < ?"
_MARKS = ", ".join("?" * (3 + 2 * len(_GROUPS)))
_INSERT = (
    f"INSERT OR REPLACE INTO user_states (user_id, created_at, expires_at, {_COLUMNS}) VALUES ({_MARKS})"
)
_SWEEP_EVERY = 256  # writes, on average, between two removals of expired entries


class SqliteUserStateStore:
    """`now` comes from `clock`, as in the other stores, so tests can drive it."""

    def __init__(
        self,
        store: LocalStore,
        *,
        clock: Callable[[], float] = time.time,
        sliding_ttl: float = SLIDING_TTL,
        absolute_ttl: float = ABSOLUTE_TTL,
        sweep_every: int = _SWEEP_EVERY,
    ) -> None:
        if sliding_ttl <= 0 or absolute_ttl <= 0:
            raise ValueError("TTLs must be positive")
        self._sweep_every = sweep_every
        self._store = store
        self._clock = clock
        self._sliding = sliding_ttl
        self._absolute = absolute_ttl

    def read(self, user_id: UUID, *, reader: str) -> UserState | None:
        now, key = self._clock(), user_id.bytes
        row = self._store.connection().execute(_READ, (key,)).fetchone()
        if row is None or row[1] <= now:
            metrics.USER_STATE_READS.labels(reader, "miss").inc()
            return None
        created_at, expires_at = row[0], row[1]
        slid = min(now + self._sliding, created_at + self._absolute)
        if slid - expires_at > self._sliding / 100:
            # Best effort: a reader that meets a busy writer keeps the good row it read; the
            # next read slides the expiry instead.
            with contextlib.suppress(sqlite3.OperationalError):
                self._store.connection().execute(_SLIDE, (slid, key, created_at, slid))
        groups = {}
        for index, group in enumerate(_GROUPS):
            value, version = row[2 + 2 * index], row[3 + 2 * index]
            if value is not None:
                decoded = codec.decode_cached(group, value)
                if decoded is not codec.HOLLOW:  # a retired group reads as missing
                    groups[group.value] = Versioned(version, decoded)
        metrics.USER_STATE_READS.labels(reader, "hit" if groups else "miss").inc()
        return UserState(user_id, **groups) if groups else None

    def write(self, state: UserState) -> frozenset[Group]:
        given = state.groups()
        encoded = {
            group: (codec.encode(group, versioned.value), codec.check_version(versioned.version))
            for group, versioned in given.items()
        }
        if not encoded:
            return frozenset()
        now, key = self._clock(), state.user_id.bytes
        written = set()
        with self._store.transaction() as connection:
            row = connection.execute(_READ, (key,)).fetchone()
            if row is None or row[1] <= now:  # none, or expired: its old versions go with it
                row = (now, now + min(self._sliding, self._absolute), *[None] * (2 * len(_GROUPS)))
            values = list(row)
            for index, group in enumerate(_GROUPS):
                if group in encoded:
                    stored = values[3 + 2 * index]
                    if stored is None or encoded[group][1] >= stored:
                        values[2 + 2 * index], values[3 + 2 * index] = encoded[group]
                        written.add(group)
            if written:
                connection.execute(_INSERT, (key, *values))
            if random.random() * self._sweep_every < 1:
                connection.execute("DELETE FROM user_states WHERE expires_at <= ?", (now,))
        for group in given:
            metrics.USER_STATE_WRITES.labels(group.value, "written" if group in written else "refused").inc()
        return frozenset(written)

    def delete(self, user_id: UUID) -> None:
        self._store.connection().execute("DELETE FROM user_states WHERE user_id = ?", (user_id.bytes,))
