"""OutageLog: an outage is logged as it begins, at most once an interval while it lasts and as it
ends, on a fake clock; and through ResilientCache and ResilientUserStateStore, a thousand failed
calls within a minute are one WARNING while every one of them is still counted."""

from __future__ import annotations

import logging
import threading
from uuid import uuid4

import pytest
from prometheus_client import REGISTRY

from adapters.caching.resilient import CacheUnavailable, CircuitBreaker
from adapters.caching.resilient_state import ResilientUserStateStore
from adapters.memory.session_state import InMemoryUserStateStore
from adapters.outage import OutageLog
from domain.session_state.model import StateUnavailable
from tests.support.clock import SettableClock
from tests.unit.test_resilient_cache import Down, Flaky, resilient

LOGGER = "test.outage"


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(1000.0)


@pytest.fixture
def outage(clock: SettableClock) -> OutageLog:
    return OutageLog("cache", logging.getLogger(LOGGER), effect="reads go to the database", monotonic=clock)


class Lines:
    """The records of LOGGER (at any level) since the test began."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self._caplog = caplog

    @property
    def levels(self) -> list[int]:
        return [r.levelno for r in self._caplog.records if r.name == LOGGER]

    @property
    def messages(self) -> list[str]:
        return [r.getMessage() for r in self._caplog.records if r.name == LOGGER]


@pytest.fixture
def lines(caplog: pytest.LogCaptureFixture) -> Lines:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    return Lines(caplog)


def test_the_first_failure_is_one_warning_with_the_call_and_the_error(outage, lines) -> None:
    outage.failed("get", Down("refused"))
    for _ in range(999):
        outage.failed("set", Down("refused"))

    assert lines.levels == [logging.WARNING]
    assert lines.messages == [
        "operation=cache.unreachable call=get error=Down('refused'): cache does not answer; "
        "reads go to the database"
    ]


def test_while_down_one_summary_per_interval_however_many_failures(outage, clock, lines) -> None:
    outage.failed("get", Down("refused"))
    clock.now += 59.9
    for _ in range(500):
        outage.failed("get", Down("refused"))
    assert len(lines.messages) == 1  # not a minute yet

    clock.now += 0.1
    outage.failed("get", Down("refused"))  # the 501st since the first line: a minute is up
    for _ in range(300):
        outage.failed("get", Down("refused"))
    clock.now += 60.0
    outage.failed("tag_versions", Down("refused"))

    assert lines.levels == [logging.WARNING] * 3
    assert lines.messages[1:] == [
        "operation=cache.still_unreachable failed=501 down_for=60.0s: cache still does not answer",
        "operation=cache.still_unreachable failed=301 down_for=120.0s: cache still does not answer",
    ]


def test_the_interval_is_configurable(clock, lines) -> None:
    outage = OutageLog("throttle", logging.getLogger(LOGGER), interval=5.0, monotonic=clock)
    outage.failed("hit", OSError("refused"))
    clock.now += 5.0
    outage.failed("hit", OSError("refused"))
    assert lines.messages[1] == (
        "operation=throttle.still_unreachable failed=1 down_for=5.0s: throttle still does not answer"
    )


def test_the_answer_after_an_outage_is_one_warning_with_its_length_and_failures(outage, clock, lines) -> None:
    outage.answered()  # healthy: nothing to say
    assert lines.messages == []
    outage.failed("get", Down("refused"))
    for _ in range(41):
        clock.now += 2.0
        outage.failed("get", Down("refused"))
    clock.now += 1.5

    outage.answered()
    outage.answered()

    assert lines.levels == [logging.WARNING] * 3  # down, one summary, up
    assert lines.messages[-1] == "operation=cache.recovered down_for=83.5s failed=42: cache answers again"
    assert not outage.down


def test_a_failure_after_the_recovery_is_a_new_outage(outage, clock, lines) -> None:
    outage.failed("get", Down("first"))
    outage.answered()
    clock.now += 30.0
    outage.failed("set", Down("second"))
    clock.now += 10.0
    outage.answered()

    assert [m.split(" ", 1)[0] for m in lines.messages] == [
        "operation=cache.unreachable",
        "operation=cache.recovered",
        "operation=cache.unreachable",
        "operation=cache.recovered",
    ]
    assert "call=set error=Down('second')" in lines.messages[2]
    assert "down_for=10.0s failed=1:" in lines.messages[3]


def test_concurrent_failures_are_one_outage_and_all_counted(outage, lines) -> None:
    start = threading.Barrier(8)

    def fail() -> None:
        start.wait()
        for _ in range(250):
            outage.failed("get", Down("refused"))

    threads = [threading.Thread(target=fail) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outage.answered()

    assert [m.split(" ", 1)[0] for m in lines.messages] == [
        "operation=cache.unreachable",
        "operation=cache.recovered",
    ]
    assert " failed=2000:" in lines.messages[1]


# Through the adapters


def cache_errors(operation: str) -> float:
    return REGISTRY.get_sample_value("cache_errors_total", {"operation": operation}) or 0.0


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The outage's WARNINGs (on LOGGER: other tests' retry threads may still write to the
    adapters' loggers) and any from the breaker, which has its moves at DEBUG only."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and (r.name == LOGGER or "breaker" in r.getMessage())
    ]


def test_a_thousand_failed_cache_calls_within_a_minute_are_one_warning_and_all_counted(clock, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="user_service.cache")
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    flaky = Flaky()
    outage = OutageLog("cache", logging.getLogger(LOGGER), monotonic=clock)
    cache = resilient(flaky, breaker=CircuitBreaker(3, 5.0, monotonic=clock), outage=outage)
    before, start = cache_errors("get"), clock.now
    flaky.down = True

    for _ in range(1000):
        with pytest.raises(CacheUnavailable):
            cache.get("k")
        clock.now += 0.05  # 1000 calls in 50 s; the breaker lets a trial through every 5 s

    assert any("operation=cache.breaker state=open" in r.getMessage() for r in caplog.records)
    warned = warnings(caplog)
    assert len(warned) == 1, warned
    assert warned[0].startswith("operation=cache.unreachable call=get error=Down('get'): ")
    assert cache_errors("get") - before == 1000  # /metrics counts every one, as before

    clock.now = start + 60.0  # a minute since the first failure: the next one is summed up
    with pytest.raises(CacheUnavailable):
        cache.get("k")
    flaky.down = False
    clock.now += 5.0  # the breaker's reset timeout: the next call is its trial
    assert cache.get("k") is None

    assert warnings(caplog)[1:] == [
        "operation=cache.still_unreachable failed=1000 down_for=60.0s: cache still does not answer",
        "operation=cache.recovered down_for=65.0s failed=1001: cache answers again",
    ]


class DeadStates(InMemoryUserStateStore):
    def read(self, user_id, *, reader):
        raise Down("read")


def test_a_thousand_failed_user_state_reads_are_one_warning_and_all_counted(clock, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    outage = OutageLog("user_state", logging.getLogger(LOGGER), monotonic=clock)
    store = ResilientUserStateStore(DeadStates(), errors=(Down,), fail_max=3, outage=outage)
    before = REGISTRY.get_sample_value("user_state_errors_total", {"operation": "read"}) or 0.0

    for _ in range(1000):
        with pytest.raises(StateUnavailable):
            store.read(uuid4(), reader="test")

    warned = warnings(caplog)
    assert len(warned) == 1, warned
    assert warned[0].startswith("operation=user_state.unreachable call=read ")
    after = REGISTRY.get_sample_value("user_state_errors_total", {"operation": "read"})
    assert after - before == 1000
