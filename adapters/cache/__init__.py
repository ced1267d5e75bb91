"""TagCache adapters (DESIGN §5): Redis for production, in-memory for tests and single-process
runs; one contract suite (tests/cache) holds both to the same behaviour."""

from __future__ import annotations

from adapters.cache.memory import InMemoryTagCache
from adapters.cache.redis import RedisTagCache

__all__ = ["InMemoryTagCache", "RedisTagCache"]
