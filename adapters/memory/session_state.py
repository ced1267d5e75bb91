"""A UserStateStore in process memory, safe for many threads of one process: the reference the
Redis adapter is held to (tests/contracts/session_state), and the store of single-process runs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from uuid import UUID

from adapters.caching import metrics
from adapters.caching.state_codec import HOLLOW, check_version
from domain.session_state.model import ABSOLUTE_TTL, SLIDING_TTL, Group, UserState, Versioned

# Expired entries are dropped when read, and all at once when the store has doubled since the
# last sweep: amortised O(1) per new entry, so users never seen again do not pile up.
_SWEEP_FLOOR = 1024


@dataclass
class _Entry:
    created_at: float
    expires_at: float
    groups: dict[Group, Versioned] = field(default_factory=dict)


@dataclass
class _Store:
    """What all handles share, as workers share a Redis server; guarded by its one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    entries: dict[UUID, _Entry] = field(default_factory=dict)
    sweep_at: int = _SWEEP_FLOOR


class InMemoryUserStateStore:
    """Expiry is checked on access: an entry past its `expires_at` is absent. `share_store()`
    gives another handle on the same entries (another "worker"), optionally with other TTLs."""

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        *,
        sliding_ttl: float = SLIDING_TTL,
        absolute_ttl: float = ABSOLUTE_TTL,
    ) -> None:
        if sliding_ttl <= 0 or absolute_ttl <= 0:
            raise ValueError("TTLs must be positive")
        self._clock = clock
        self._sliding = sliding_ttl
        self._absolute = absolute_ttl
        self._store = _Store()

    def share_store(self, **ttls: float) -> InMemoryUserStateStore:
        other = InMemoryUserStateStore(
            self._clock, **{"sliding_ttl": self._sliding, "absolute_ttl": self._absolute, **ttls}
        )
        other._store = self._store
        return other

    def read(self, user_id: UUID, *, reader: str) -> UserState | None:
        now, store, state = self._clock(), self._store, None
        with store.lock:
            entry = _live(store, user_id, now)
            if entry is not None:
                entry.expires_at = min(now + self._sliding, entry.created_at + self._absolute)
                groups = {group.value: v for group, v in entry.groups.items() if v.value is not HOLLOW}
                state = UserState(user_id, **groups) if groups else None  # only retired: none
        metrics.USER_STATE_READS.labels(reader, "miss" if state is None else "hit").inc()
        return state

    def write(self, state: UserState) -> frozenset[Group]:
        given = state.groups()
        for versioned in given.values():
            check_version(versioned.version)
        if not given:
            return frozenset()
        now, store = self._clock(), self._store
        with store.lock:
            entry = _live(store, state.user_id, now)
            if entry is None:
                entry = store.entries[state.user_id] = _Entry(now, now + min(self._sliding, self._absolute))
                if len(store.entries) >= store.sweep_at:
                    _sweep(store, now)
            written = set()
            for group, versioned in given.items():
                stored = entry.groups.get(group)
                if stored is None or versioned.version >= stored.version:
                    entry.groups[group] = versioned
                    written.add(group)
        for group in given:
            metrics.USER_STATE_WRITES.labels(group.value, "written" if group in written else "refused").inc()
        return frozenset(written)

    def delete(self, user_id: UUID) -> None:
        store = self._store
        with store.lock:
            store.entries.pop(user_id, None)


def _live(store: _Store, user_id: UUID, now: float) -> _Entry | None:
    """The user's entry unless it has expired (dropped then); the lock is held."""
    entry = store.entries.get(user_id)
    if entry is not None and entry.expires_at <= now:
        del store.entries[user_id]
        return None
    return entry


def _sweep(store: _Store, now: float) -> None:
    for user_id in [u for u, entry in store.entries.items() if entry.expires_at <= now]:
        del store.entries[user_id]
    store.sweep_at = max(_SWEEP_FLOOR, 2 * len(store.entries))
