"""A TagCache in the host's shared SQLite file (adapters.local.store): the Redis adapter's
guarantees for every process on one host.

An entry is a row with its value, expiry, XFetch delta and the versions its tags had, as JSON;
a tag's version is a row of `cache_tags`, incremented by an invalidation (one row however many
entries carry the tag). Each operation is one statement, so it is atomic without a transaction:
`get` returns the entry only while none of its recorded versions moved on, and `set` stores
only while the snapshot it carries is still current (no stale set).

As with Redis, every snapshot also records the store's epoch (the version of the pseudo-tag
`~epoch`), which changes when the store starts afresh; rows that expired are removed now and
then by the process that writes (amortised, through the expiry index).
"""

from __future__ import annotations

import json
import random
import secrets
import time
from collections.abc import Callable, Sequence

from adapters.local.store import EPOCH, LocalStore
from ports.tag_cache import CacheEntry, TagVersions

# Some version recorded in `versions` (JSON: tag -> version) differs from the tag's current
# one; a tag without a row is at version 0.
_MOVED_ON = """
SELECT 1 FROM json_each({versions}) AS recorded LEFT JOIN cache_tags AS t ON t.tag = recorded.key
WHERE IFNULL(t.version, 0) != recorded.value
"""
_GET = f"""
SELECT value, expires_at, delta FROM cache_entries AS e
WHERE key = ?1 AND expires_at > ?2 AND NOT EXISTS ({_MOVED_ON.format(versions="e.versions")})
"""
# ?1 key, ?2 value, ?3 expires_at, ?4 delta, ?5 the snapshot of versions.
_SET = f"""
INSERT OR REPLACE INTO cache_entries (key, value, expires_at, delta, versions)
SELECT ?1, ?2, ?3, ?4, ?5 WHERE NOT EXISTS ({_MOVED_ON.format(versions="?5")})
"""
_ACQUIRE = """
INSERT INTO cache_leases (key, token, until) VALUES (?, ?, ?)
ON CONFLICT (key) DO UPDATE SET token = excluded.token, until = excluded.until WHERE until <= ?
"""
_SWEEP_EVERY = 256  # sets, on average, between two removals of expired rows


class SqliteTagCache:
    """Leases belong to this instance (one token per key), as with Redis."""

    def __init__(
        self,
        store: LocalStore,
        *,
        clock: Callable[[], float] = time.time,
        sweep_every: int = _SWEEP_EVERY,
    ) -> None:
        self._store = store
        self._clock = clock
        self._sweep_every = sweep_every
        self._tokens: dict[str, str] = {}

    def tag_versions(self, key: str, tags: Sequence[str]) -> dict[str, int]:
        if not tags:
            return {}
        names = [*dict.fromkeys(tags), EPOCH]
        marks = ",".join("?" * len(names))
        rows = self._store.connection().execute(
            f"SELECT tag, version FROM cache_tags WHERE tag IN ({marks})",  # noqa: S608 (placeholders)
            names,
        )
        found = dict(rows.fetchall())
        return {tag: found.get(tag, 0) for tag in names}

    def get(self, key: str) -> CacheEntry | None:
        row = self._store.connection().execute(_GET, (key, self._clock())).fetchone()
        return None if row is None else CacheEntry(row[0], row[1], row[2])

    def set(self, key: str, value: bytes, *, ttl: float, versions: TagVersions, delta: float = 0.0) -> bool:
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        now = self._clock()
        recorded = json.dumps({tag: int(version) for tag, version in versions.items()})
        connection = self._store.connection()
        stored = connection.execute(_SET, (key, bytes(value), now + ttl, delta, recorded)).rowcount == 1
        if random.random() * self._sweep_every < 1:
            self._sweep(now)
        return stored

    def invalidate(self, *tags: str) -> None:
        names = list(dict.fromkeys(tags))
        if not names:
            return
        rows = ",".join(["(?, 1)"] * len(names))
        self._store.connection().execute(
            f"INSERT INTO cache_tags (tag, version) VALUES {rows} "  # noqa: S608 (placeholders)
            "ON CONFLICT (tag) DO UPDATE SET version = version + 1",
            names,
        )

    def delete(self, *keys: str) -> None:
        if keys:
            marks = ",".join("?" * len(keys))
            self._store.connection().execute(
                f"DELETE FROM cache_entries WHERE key IN ({marks})",  # noqa: S608 (placeholders)
                keys,
            )

    def acquire(self, key: str, ttl: float) -> bool:
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        now, token = self._clock(), secrets.token_hex(16)
        acquired = self._store.connection().execute(_ACQUIRE, (key, token, now + ttl, now)).rowcount == 1
        if acquired:
            self._tokens[key] = token
        return acquired

    def release(self, key: str) -> None:
        token = self._tokens.pop(key, None)
        if token is not None:  # compare-and-delete: never drop a lease someone else took since
            self._store.connection().execute(
                "DELETE FROM cache_leases WHERE key = ? AND token = ?", (key, token)
            )

    def _sweep(self, now: float) -> None:
        with self._store.transaction() as connection:
            connection.execute("DELETE FROM cache_entries WHERE expires_at <= ?", (now,))
            connection.execute("DELETE FROM cache_leases WHERE until <= ?", (now,))
