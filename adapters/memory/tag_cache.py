"""A TagCache in process memory, safe for many threads of one process."""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ports.tag_cache import CacheEntry, TagVersions

# A sweep of dead entries runs when the store has doubled since the last one: amortised O(1)
# per set, and dead entries never outnumber live ones by more than this floor.
_SWEEP_FLOOR = 1024


@dataclass(frozen=True, slots=True)
class _Stored:
    entry: CacheEntry
    versions: tuple[tuple[str, int], ...]


@dataclass
class _Store:
    """What all handles share, as workers share a Redis server; guarded by its one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    entries: OrderedDict[str, _Stored] = field(default_factory=OrderedDict)  # LRU first
    # Never pruned: forgetting a version would reset it to 0 and could revive old entries.
    versions: dict[str, int] = field(default_factory=dict)
    leases: dict[str, tuple[str, float]] = field(default_factory=dict)  # key -> token, until
    sweep_at: int = _SWEEP_FLOOR


class InMemoryTagCache:
    """Entries expire by TTL (checked on read), tags are versioned like the Redis adapter's,
    and `max_entries`, when given, evicts the least recently used entry. A lease belongs to the
    handle that took it, as with Redis; `share_store()` gives another handle on the same store
    (another "worker")."""

    def __init__(self, clock: Callable[[], float] = time.time, *, max_entries: int | None = None) -> None:
        self._clock = clock
        self._max_entries = max_entries
        self._store = _Store()
        self._tokens: dict[str, str] = {}  # this handle's lease tokens, by key

    def share_store(self) -> InMemoryTagCache:
        other = InMemoryTagCache(self._clock, max_entries=self._max_entries)
        other._store = self._store
        return other

    def tag_versions(self, key: str, tags: Sequence[str]) -> dict[str, int]:
        store = self._store
        with store.lock:
            return {tag: store.versions.get(tag, 0) for tag in tags}

    def get(self, key: str) -> CacheEntry | None:
        now, store = self._clock(), self._store
        with store.lock:
            stored = store.entries.get(key)
            if stored is None:
                return None
            if not _alive(store, stored, now):
                del store.entries[key]  # versions only grow: it can never be visible again
                return None
            store.entries.move_to_end(key)
            return stored.entry

    def set(self, key: str, value: bytes, *, ttl: float, versions: TagVersions, delta: float = 0.0) -> bool:
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        now, store = self._clock(), self._store
        with store.lock:
            if any(store.versions.get(tag, 0) != v for tag, v in versions.items()):
                return False
            entry = CacheEntry(bytes(value), now + ttl, delta)
            store.entries[key] = _Stored(entry, tuple(versions.items()))
            store.entries.move_to_end(key)
            if self._max_entries is not None:
                while len(store.entries) > self._max_entries:
                    store.entries.popitem(last=False)
            if len(store.entries) >= store.sweep_at:
                _sweep(store, now)
            return True

    def invalidate(self, *tags: str) -> None:
        store = self._store
        with store.lock:
            for tag in set(tags):
                store.versions[tag] = store.versions.get(tag, 0) + 1

    def delete(self, *keys: str) -> None:
        store = self._store
        with store.lock:
            for key in keys:
                store.entries.pop(key, None)

    def acquire(self, key: str, ttl: float) -> bool:
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        now, store, token = self._clock(), self._store, secrets.token_hex(8)
        with store.lock:
            held = store.leases.get(key)
            if held is not None and held[1] > now:
                return False
            store.leases[key] = (token, now + ttl)
            self._tokens[key] = token
            return True

    def release(self, key: str) -> None:
        store = self._store
        with store.lock:
            token = self._tokens.pop(key, None)
            held = store.leases.get(key)
            if token is not None and held is not None and held[0] == token:
                del store.leases[key]


def _alive(store: _Store, stored: _Stored, now: float) -> bool:
    return stored.entry.expires_at > now and all(
        store.versions.get(tag, 0) == v for tag, v in stored.versions
    )


def _sweep(store: _Store, now: float) -> None:
    for key in [k for k, s in store.entries.items() if not _alive(store, s, now)]:
        del store.entries[key]
    for key in [k for k, (_, until) in store.leases.items() if until <= now]:
        del store.leases[key]
    store.sweep_at = max(_SWEEP_FLOOR, 2 * len(store.entries))
