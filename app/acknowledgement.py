"""A command is acknowledged only once every worker would read what it did (DESIGN §5, §10).

A write commits to the database, then invalidates the read cache and writes the session state.
When the cache server does not answer, that last step stays pending in this process
(adapters.caching.repairs), and answering the write then would let another worker, reaching the
server once it answers again (a paused Redis, a partition healed), serve what the write replaced
until this process's retry lands: a logged-out token accepted, old roles, old fields. So:

* before a command, this process's pending repairs are tried; when the server still does not
  answer, the command is refused with 503 and nothing is changed (`CacheOutage`);
* after it, the repairs its own writes left pending are tried for up to `CACHE_REPAIR_WAIT`
  seconds; when they have not landed by then the answer is 503 (`CacheBehind`): the change is
  saved, and shows everywhere once the retry lands, but it was not acknowledged.

Reads go on from the database meanwhile, as in any cache outage. Commands that leave nothing in
the caches (`cache_neutral`) are neither refused nor made to wait. A refresh that succeeds is
not made to wait either (`unwaited`): what it writes only renews a session every worker already
accepts, and a client that never got its new refresh token would present the old one again and
end its session as a reuse. A command that changes nothing still writes the caches, since it
may be the retry of one answered 503. See docs/decisions/0009.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from adapters.caching import repairs
from adapters.caching.resilient import Resilient
from application.messagebus import MessageBus
from domain import errors
from domain.messages import Message


class CacheOutage(errors.Busy):
    """The cache server does not answer, and this process still owes it a repair: a write now
    could not be made visible everywhere. Nothing was changed."""

    default = Message(
        "The cache is out of reach, so changes are refused for now; nothing was changed. "
        "Try again in a few seconds."
    )


class CacheBehind(errors.Busy):
    """The change is saved, but the cache server did not take its invalidation in time: other
    workers may not show it until it does."""

    default = Message(
        "The change is saved, but the cache is out of reach, so it may not show everywhere yet. "
        "Try again in a few seconds."
    )


class AcknowledgingBus:
    """A message bus whose commands (`commands`, but those in `cache_neutral`) are refused
    while this process owes the cache a repair it cannot apply, and wait up to `wait` seconds
    for the repairs their own writes left pending; those in `unwaited` wait only when they
    are refused after writing. `stores`: the caches that may owe repairs (the resilient
    decorators; others are left out)."""

    def __init__(
        self,
        bus: MessageBus,
        stores: Sequence[object],
        *,
        wait: float,
        commands: Collection[type],
        cache_neutral: Collection[type] = (),
        unwaited: Collection[type] = (),
    ) -> None:
        self._bus = bus
        self._stores = [s for s in stores if isinstance(s, Resilient)]
        self._wait = wait
        self._guarded = frozenset(commands) - frozenset(cache_neutral)
        self._unwaited = frozenset(unwaited)

    def handle(self, message: object) -> Any:
        kind = type(message)
        if not self._stores or kind not in self._guarded:
            return self._bus.handle(message)
        if not all([store.repair() for store in self._stores]):  # each store tried
            raise CacheOutage()
        with repairs.owed() as owed:
            try:
                result = self._bus.handle(message)
            except Exception as error:
                # Refused after writing (a reused refresh token ends its session, then says so):
                # the refusal holds everywhere only once those writes have landed. A bug's
                # exception is left as it is, to be logged as one.
                if not owed.settle(self._wait) and isinstance(error, errors.DomainError):
                    raise CacheBehind() from error
                raise
        if kind not in self._unwaited and not owed.settle(self._wait):
            raise CacheBehind()
        return result


def command_types(*maps: Mapping[type, Callable]) -> frozenset[type]:
    return frozenset(kind for handlers in maps for kind in handlers)
