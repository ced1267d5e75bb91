"""One round trip for a request's two reads: its session state and the cache entry it answers with.

The HTTP hot path authenticates (a UserState read) and then reads one cache entry. Before the
first, it names the entry it will read (`want`); a store that can read both in one call to its
server (the Redis one: one Lua script for the state and the entry) does so when it reads the
state, and leaves the entry here (`deliver`); the cache's next read of that key, on the same
thread, takes it (`take`) instead of calling the server again. Stores that cannot, or need not
(the local store's reads are in-process), ignore it, and their reads go on as before.

A delivered entry is what the cache's own read would have returned at that moment, error
included: the read that takes it raises it, and its resilient decorator counts the failure as
its own. It is good for one read, on its thread, of its key, before the next `clear`: the hot
path clears at the end of every request, and a write through the cache clears it too. An
invalidation by any thread of this process after the entry was read (`invalidated`: another
request's write, or a failed invalidation retried, which the resilient cache's read guard
stops guarding once it lands) makes every entry delivered before it unusable, so the read
that would take one asks the server again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Final

NOTHING: Final = object()  # what `take` returns when nothing was delivered for the key


class ReadAhead:
    """Per thread: the entry key the request will read next, and what a store delivered for it."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._generation = 0  # invalidations through the cache so far, by every thread

    def invalidated(self) -> None:
        """An invalidation through the cache landed: entries delivered before it are stale."""
        self._generation += 1  # a lost update between two threads still moves it on

    def want(self, key: str) -> None:
        """The request will read `key` after its session state: read it along, if you can."""
        local = self._local
        local.wanted, local.delivered = key, NOTHING

    def take_wanted(self) -> tuple[str, int] | None:
        """The key to read along with the state, once, and the moment to deliver it with (take
        it before the read): None when there is none (any more)."""
        local = self._local
        key = getattr(local, "wanted", None)
        local.wanted = None
        return None if key is None else (key, self._generation)

    def deliver(self, key: str, entry: Any, moment: int) -> None:
        """What the cache's read of `key` returns (a stored form, or None), or the error it
        raises, read after `moment` (take_wanted's)."""
        local = self._local
        local.key, local.delivered, local.moment = key, entry, moment

    def read_along(self, wanted: tuple[str, int], read: Callable[[str], tuple[Any, Any]]) -> Any:
        """`read(key)` of the `wanted` entry (take_wanted's) along with the state, in one call that
        returns both replies: the entry's is delivered (an error reply of its own included), and
        so is an error of the whole call, which the cache's read then raises as its own would;
        the state's is returned."""
        key, moment = wanted
        try:
            state, entry = read(key)
        except Exception as error:
            self.deliver(key, error, moment)
            raise
        self.deliver(key, entry, moment)
        return state

    def take(self, key: str) -> Any:
        """The entry delivered for `key`, once (raised, if it is an error); `NOTHING` when none was."""
        local = self._local
        delivered = getattr(local, "delivered", NOTHING)
        if delivered is NOTHING:
            return NOTHING
        local.delivered = NOTHING
        if local.key != key or local.moment != self._generation:
            return NOTHING
        if isinstance(delivered, Exception):
            raise delivered
        return delivered

    def clear(self) -> None:
        local = self._local
        local.wanted, local.delivered = None, NOTHING
