"""UserStateStore adapters (domain.session_state.model): Redis for production, in-memory for tests and
single-process runs, and a decorator for a Redis that may be down; one contract suite
(tests/state) holds the stores to the same behaviour."""

from __future__ import annotations

from adapters.state.memory import InMemoryUserStateStore
from adapters.state.redis import RedisUserStateStore
from adapters.state.resilient import ResilientUserStateStore

__all__ = ["InMemoryUserStateStore", "RedisUserStateStore", "ResilientUserStateStore"]
