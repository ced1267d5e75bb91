"""A tag-aware key-value cache for read models (DESIGN §5)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

TagVersions = Mapping[str, int]


@dataclass(frozen=True)
class CacheEntry:
    """A cached value. `delta` is how long computing it took (seconds) and `expires_at` when
    it expires (cache clock, seconds since the epoch): together they drive XFetch."""

    value: bytes
    expires_at: float
    delta: float


class TagCache(Protocol):
    """Values under keys, each key stored with the versions its tags had when its value was
    read from the source of truth.

    Invalidating a tag increments its version, one O(1) write however many keys carry it; an
    entry whose recorded versions differ from the current ones is invisible to `get`.

    No stale set: a reader takes `tag_versions(tags)` *before* reading the source and passes
    them to `set`; `set` stores nothing when any of those tags was invalidated since, so a
    value read before a write committed can never be stored after the write invalidated.
    """

    def tag_versions(self, key: str, tags: Sequence[str]) -> dict[str, int]:
        """A snapshot to pass, whole, to `set(key, ...)`: the version of each tag as the entry
        `key` records it, and possibly entries of the adapter's own (the Redis adapter adds its
        server's epoch; on Redis Cluster the versions are those of the key's slot group)."""
        ...

    def get(self, key: str) -> CacheEntry | None:
        """The entry, if present, unexpired and no tag of it invalidated since it was stored;
        one round trip to the cache server."""
        ...

    def set(self, key: str, value: bytes, *, ttl: float, versions: TagVersions, delta: float = 0.0) -> bool:
        """Store unless a tag in `versions` moved on; True when stored."""
        ...

    def invalidate(self, *tags: str) -> None: ...

    def delete(self, *keys: str) -> None: ...

    def acquire(self, key: str, ttl: float) -> bool:
        """Take the recompute lease of `key` for `ttl` seconds (at most one holder across all
        processes sharing the cache); False when another holder has it."""
        ...

    def release(self, key: str) -> None: ...
