"""AcknowledgingBus and adapters.caching.repairs: a command is answered only once the repairs
its writes left pending have landed, and refused, unrun, while this process owes the cache a
repair the server still does not take (the real-Redis outage: tests/integration/test_cache_outage.py)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pytest

from adapters.caching import repairs
from adapters.memory.tag_cache import InMemoryTagCache
from app.acknowledgement import AcknowledgingBus, CacheBehind, CacheOutage
from domain.errors import Unauthenticated
from tests.unit.test_resilient_cache import Flaky, resilient

WAIT = 0.5


@dataclass(frozen=True)
class Write:
    user: int


@dataclass(frozen=True)
class Neutral:
    """A command that leaves nothing in the cache (a token sent by mail)."""


@dataclass(frozen=True)
class Read:
    user: int


@dataclass(frozen=True)
class Renew:
    """A command whose success need not wait (a refresh), refused when `refuse`."""

    user: int
    refuse: bool = False


class Handlers:
    """A bus whose Write invalidates its user's tag, as a command's event subscriber does."""

    def __init__(self, cache) -> None:
        self.cache = cache
        self.handled: list[object] = []

    def handle(self, message: object) -> object:
        self.handled.append(message)
        if isinstance(message, Write | Renew):
            self.cache.invalidate(f"user.{message.user}")
        if isinstance(message, Renew) and message.refuse:
            raise Unauthenticated()  # after writing, as a reused refresh token is refused
        return message


def bus_on(flaky: Flaky) -> tuple[AcknowledgingBus, Handlers]:
    cache = resilient(flaky, retry_interval=60)  # no background retry within a test
    handlers = Handlers(cache)
    bus = AcknowledgingBus(
        handlers,
        [cache],
        wait=WAIT,
        commands={Write, Neutral, Renew},
        cache_neutral={Neutral},
        unwaited={Renew},
    )
    return bus, handlers


def test_a_command_whose_invalidation_lands_is_answered_at_once() -> None:
    bus, handlers = bus_on(Flaky())
    started = time.monotonic()
    assert bus.handle(Write(1)) == Write(1)
    assert time.monotonic() - started < WAIT / 2
    assert not handlers.cache.pending_invalidations


def test_a_command_whose_invalidation_does_not_land_is_not_acknowledged() -> None:
    flaky = Flaky()
    bus, handlers = bus_on(flaky)
    flaky.down = True
    started = time.monotonic()
    with pytest.raises(CacheBehind):
        bus.handle(Write(1))
    assert WAIT <= time.monotonic() - started < WAIT + 0.3
    assert handlers.handled == [Write(1)]  # it ran: the change is saved
    assert handlers.cache.pending_invalidations == {"user.1"}


def behind(flaky: Flaky) -> tuple[AcknowledgingBus, Handlers]:
    """A bus whose Write(1) was saved but not acknowledged: the server is down."""
    bus, handlers = bus_on(flaky)
    flaky.down = True
    with pytest.raises(CacheBehind):
        bus.handle(Write(1))
    return bus, handlers


def test_a_command_is_refused_unrun_while_a_repair_the_server_does_not_take_is_pending() -> None:
    flaky = Flaky()
    bus, handlers = behind(flaky)
    started = time.monotonic()
    with pytest.raises(CacheOutage):
        bus.handle(Write(2))
    assert time.monotonic() - started < WAIT / 2  # one try, no wait
    assert handlers.handled == [Write(1)]

    flaky.down = False  # the server answers: the pending repair lands first, then the command
    assert bus.handle(Write(2)) == Write(2)
    assert not handlers.cache.pending_invalidations
    assert handlers.handled == [Write(1), Write(2)]


def test_a_command_is_acknowledged_once_the_server_takes_its_repair_within_the_wait() -> None:
    flaky = Flaky()
    bus, handlers = bus_on(flaky)
    flaky.down = True
    back = threading.Timer(WAIT / 4, lambda: setattr(flaky, "down", False))
    back.start()
    try:
        assert bus.handle(Write(1)) == Write(1)  # tried again until the deadline's last try
    finally:
        back.cancel()
    assert not handlers.cache.pending_invalidations
    tag_version = handlers.cache.tag_versions("k", ["user.1"])["user.1"]
    assert tag_version > 0  # the invalidation reached the server


def test_queries_and_cache_neutral_commands_neither_wait_nor_are_refused() -> None:
    bus, _ = behind(Flaky())
    started = time.monotonic()
    assert bus.handle(Read(1)) == Read(1)
    assert bus.handle(Neutral()) == Neutral()
    assert time.monotonic() - started < WAIT / 2


def test_a_repair_left_outside_any_command_is_not_owed_but_gates_the_next_one() -> None:
    flaky = Flaky()
    bus, handlers = bus_on(flaky)
    flaky.down = True
    handlers.cache.invalidate("user.9")  # e.g. a fill's cleanup: pending, owed by no command
    with repairs.owed() as owed:
        pass
    assert owed.settle(0) is True
    with pytest.raises(CacheOutage):
        bus.handle(Write(1))
    assert handlers.handled == []


def test_stores_that_cannot_fail_are_left_out() -> None:
    handlers = Handlers(InMemoryTagCache())
    bus = AcknowledgingBus(handlers, [InMemoryTagCache(), None], wait=WAIT, commands={Write})
    assert bus.handle(Write(1)) == Write(1)


class Stuck:
    """A store whose repair never lands."""

    def __init__(self) -> None:
        self.tries = 0

    def repair(self) -> bool:
        self.tries += 1
        return False

    def pending_among(self, keys) -> bool:
        return True


def test_settle_tries_again_with_doubling_pauses_until_its_time_is_up() -> None:
    now = [0.0]
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        now[0] += seconds

    store = Stuck()
    with repairs.owed() as owed:
        repairs.owe(store, ["k"])
    assert owed.settle(2.0, monotonic=lambda: now[0], sleep=sleep) is False
    assert pauses == [0.05, 0.1, 0.2, 0.4, 0.5, 0.5, 0.25]
    assert store.tries == len(pauses) + 1
    assert now[0] == 2.0


def test_owe_outside_a_command_records_nothing() -> None:
    store = Stuck()
    repairs.owe(store, ["k"])  # no command under way
    with repairs.owed() as owed:
        pass
    assert owed.outstanding() == []


def test_an_unwaited_command_is_answered_at_once_and_its_repair_kept() -> None:
    flaky = Flaky()
    bus, handlers = bus_on(flaky)
    flaky.down = True
    started = time.monotonic()
    assert bus.handle(Renew(1)) == Renew(1)
    assert time.monotonic() - started < WAIT / 2
    assert handlers.cache.pending_invalidations == {"user.1"}


def test_a_refusal_after_writing_waits_for_the_writes_like_a_success() -> None:
    flaky = Flaky()
    bus, _ = bus_on(flaky)
    with pytest.raises(Unauthenticated):
        bus.handle(Renew(1, refuse=True))  # its write landed: the refusal as it is
    flaky.down = True
    with pytest.raises(CacheBehind) as raised:
        bus.handle(Renew(2, refuse=True))
    assert isinstance(raised.value.__cause__, Unauthenticated)
