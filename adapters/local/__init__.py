"""The embedded default's shared store: one SQLite file in the instance folder holding the read
cache, the session state and the login throttle for every process on the host (see store.py);
the same contract suites as the Redis adapters hold them to the same behaviour."""

from __future__ import annotations

from adapters.local.session_state import SqliteUserStateStore
from adapters.local.store import LocalStore
from adapters.local.tag_cache import SqliteTagCache

__all__ = ["LocalStore", "SqliteTagCache", "SqliteUserStateStore"]
