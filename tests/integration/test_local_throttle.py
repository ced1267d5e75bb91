"""The `limits` storage in the host's shared SQLite file (adapters.local.throttle): moving windows
that agree with limits' own memory storage on the same calls, the login throttle on it, and
several processes on one file that together never get more than the limit.
"""

from __future__ import annotations

import logging
import multiprocessing
import random
import sqlite3
import time
from types import SimpleNamespace

import limits.storage.memory
import pytest
from limits import parse
from limits._storage_scheme import SCHEMES
from limits.errors import StorageError
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from adapters.local import LocalStore
from adapters.local.throttle import SqliteLimitsStorage
from adapters.throttle import LimitsLoginThrottle
from tests.support.clock import SettableClock

FIFTEEN_MINUTES = 15 * 60


@pytest.fixture
def path(tmp_path):
    return tmp_path / "store.db"


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture
def storage(path, clock) -> SqliteLimitsStorage:
    return SqliteLimitsStorage(LocalStore(path), clock)


def rows(path, table: str = "throttle_hits") -> dict[str, int]:
    """Rows per key in `table`, read through a connection of its own."""
    with sqlite3.connect(path) as connection:
        found = connection.execute(f"SELECT key, COUNT(*) FROM {table} GROUP BY key").fetchall()  # noqa: S608
    connection.close()
    return dict(found)


def broken_store(path) -> LocalStore:
    """A store whose file is not a database: every statement fails with sqlite3.DatabaseError."""
    path.write_bytes(b"not a database " * 512)
    return LocalStore(path)


# The moving window, against limits' memory storage

ITEMS = [parse(rate) for rate in ("3/10 seconds", "5/1 minute", "1/2 seconds", "8/30 seconds")]


@pytest.mark.parametrize("seed", range(10))
def test_moving_windows_agree_with_limits_memory_storage(seed, path, monkeypatch):
    """The same random calls on both storages, both on one fake clock, give the same answers.
    Times are random floats, so no entry is ever exactly on the window's edge (where the memory
    storage's acquire and window disagree with each other). The start of an empty window is not
    compared: the memory storage reports its oldest entry's time, expired or not."""
    rng = random.Random(seed)
    clock = SettableClock()
    monkeypatch.setattr(limits.storage.memory, "time", SimpleNamespace(time=clock))
    reference = MovingWindowRateLimiter(MemoryStorage())
    subject = MovingWindowRateLimiter(SqliteLimitsStorage(LocalStore(path), clock, sweep_every=5))
    history: list[str] = []
    answers = {"hit": 0, "refused": 0, "full": 0}

    for _ in range(400):
        item, who = rng.choice(ITEMS), rng.choice(("alice", "bob"))
        action = rng.choices(("hit", "test", "stats", "clear", "wait"), weights=(8, 3, 3, 1, 4))[0]
        cost = rng.choice((1, 1, 1, 2, 3))
        history.append(f"{clock.now:.6f} {action} {item} {who} cost={cost}")
        where = "\n".join(history[-30:])
        if action == "hit":
            expected = reference.hit(item, who, cost=cost)
            assert subject.hit(item, who, cost=cost) == expected, where
            answers["hit" if expected else "refused"] += 1
        elif action == "test":
            assert subject.test(item, who, cost=cost) == reference.test(item, who, cost=cost), where
        elif action == "stats":
            expected = reference.get_window_stats(item, who)
            got = subject.get_window_stats(item, who)
            assert got.remaining == expected.remaining, where
            if expected.remaining < item.amount:
                assert got.reset_time == expected.reset_time, where
            else:
                assert got.reset_time == clock.now + item.get_expiry(), where
                answers["full"] += 1
        elif action == "clear":
            reference.clear(item, who)
            subject.clear(item, who)
        else:
            clock.now += rng.expovariate(1 / 3) if rng.random() < 0.9 else rng.uniform(10, 70)

    assert min(answers.values()) > 0, answers  # the sequence went through every case


def test_an_entry_exactly_expiry_old_is_still_in_the_window(storage, clock):
    limiter, item = MovingWindowRateLimiter(storage), parse("1/10 seconds")
    assert limiter.hit(item, "k")
    hit_at = clock.now

    clock.now += 10
    assert limiter.get_window_stats(item, "k") == (hit_at + 10, 0)
    assert not limiter.test(item, "k")
    assert not limiter.hit(item, "k")

    clock.now += 0.001
    assert limiter.test(item, "k")
    assert limiter.hit(item, "k")
    assert limiter.get_window_stats(item, "k") == (clock.now + 10, 0)


def test_a_cost_is_all_or_nothing_and_never_more_than_the_limit(storage, path):
    limiter, item = MovingWindowRateLimiter(storage), parse("5/1 minute")
    assert not limiter.hit(item, "k", cost=6)
    assert limiter.hit(item, "k", cost=3)
    assert not limiter.hit(item, "k", cost=3)
    assert limiter.hit(item, "k", cost=2)
    assert limiter.get_window_stats(item, "k").remaining == 0
    assert rows(path) == {item.key_for("k"): 5}


def test_clear_empties_one_key_only(storage):
    limiter, item = MovingWindowRateLimiter(storage), parse("2/1 minute")
    limiter.hit(item, "a", cost=2)
    limiter.hit(item, "b", cost=2)
    storage.incr("counter", 60)

    limiter.clear(item, "a")
    storage.clear("counter")

    assert limiter.get_window_stats(item, "a").remaining == 2
    assert limiter.get_window_stats(item, "b").remaining == 0
    assert storage.get("counter") == 0


# Fixed window counters and the rest of the Storage interface


def test_counters_count_until_they_expire_then_start_again(storage, clock):
    assert storage.get("c") == 0
    assert storage.get_expiry("c") == clock.now
    started = clock.now
    assert storage.incr("c", 10) == 1
    clock.now += 4
    assert storage.incr("c", 10, amount=3) == 4
    assert storage.get("c") == 4
    assert storage.get_expiry("c") == started + 10  # set by the first increment only

    clock.now = started + 10
    assert storage.get("c") == 0
    assert storage.get_expiry("c") == clock.now
    assert storage.incr("c", 10, amount=2) == 2
    assert storage.get_expiry("c") == clock.now + 10


def test_reset_empties_the_store_for_every_process_and_counts_its_keys(storage, path):
    limiter, item = MovingWindowRateLimiter(storage), parse("3/1 minute")
    limiter.hit(item, "a", cost=3)
    limiter.hit(item, "b")
    storage.incr("c", 60)
    storage.incr(item.key_for("a"), 60)  # the same key in both tables counts once
    other = SqliteLimitsStorage(LocalStore(path))

    assert other.reset() == 3

    assert limiter.get_window_stats(item, "a").remaining == 3
    assert storage.get("c") == 0
    assert rows(path) == {} and rows(path, "throttle_counters") == {}


def test_it_is_constructed_directly_and_registers_no_scheme(storage):
    assert SqliteLimitsStorage not in SCHEMES.values()
    assert storage.check()
    assert MovingWindowRateLimiter(storage).hit(parse("1/minute"), "k")


def test_errors_are_storage_errors_by_default(path):
    store = broken_store(path)
    wrapped = SqliteLimitsStorage(store)
    with pytest.raises(StorageError) as raised:
        wrapped.acquire_entry("k", 5, 60)
    assert isinstance(raised.value.storage_error, sqlite3.DatabaseError)
    assert wrapped.check() is False

    with pytest.raises(sqlite3.DatabaseError):
        SqliteLimitsStorage(store, wrap_exceptions=False).get_moving_window("k", 5, 60)


# Rows are removed through an index


def test_acquiring_a_key_drops_its_entries_that_left_the_window(storage, path, clock):
    limiter, item = MovingWindowRateLimiter(storage), parse("3/10 seconds")
    limiter.hit(item, "k", cost=3)
    clock.now += 6
    limiter.hit(item, "other")
    clock.now += 5  # the three have left the window; nothing acquired "k" since

    assert rows(path) == {item.key_for("k"): 3, item.key_for("other"): 1}
    assert limiter.hit(item, "k")
    assert rows(path) == {item.key_for("k"): 1, item.key_for("other"): 1}


def test_the_sweep_removes_expired_rows_of_every_key_and_keeps_the_rest(path, clock):
    storage = SqliteLimitsStorage(LocalStore(path), clock, sweep_every=1_000_000)
    limiter, short, long = MovingWindowRateLimiter(storage), parse("5/10 seconds"), parse("5/1 minute")
    for who in ("a", "b", "c"):
        limiter.hit(short, who, cost=2)
        limiter.hit(long, who)
    storage.incr("gone", 10)
    storage.incr("kept", 60)
    clock.now += 11

    storage.sweep()

    assert rows(path) == {long.key_for(who): 1 for who in "abc"}
    assert rows(path, "throttle_counters") == {"kept": 1}
    assert limiter.get_window_stats(long, "a").remaining == 4


def test_writes_sweep_now_and_then(path, clock):
    storage = SqliteLimitsStorage(LocalStore(path), clock, sweep_every=1)  # every write
    limiter, item = MovingWindowRateLimiter(storage), parse("5/10 seconds")
    limiter.hit(item, "a", cost=2)
    storage.incr("counter", 10)
    clock.now += 11

    limiter.hit(item, "b")
    assert rows(path) == {item.key_for("b"): 1}
    assert rows(path, "throttle_counters") == {}


def test_no_statement_scans_a_whole_table(path, clock):
    """Every statement but reset's finds its rows through an index, however many rows the tables
    hold: the plan of each one, as SQLite runs it with its values, searches and never scans."""
    store = LocalStore(path)
    storage = SqliteLimitsStorage(store, clock, sweep_every=1)
    limiter, item = MovingWindowRateLimiter(storage), parse("5/10 seconds")
    for who in range(50):
        limiter.hit(item, str(who))
        storage.incr(str(who), 10)
    statements: list[str] = []
    store.connection().set_trace_callback(statements.append)

    limiter.hit(item, "1")
    limiter.test(item, "1")
    limiter.get_window_stats(item, "1")
    storage.incr("1", 10)
    storage.get("1")
    storage.get_expiry("1")
    limiter.clear(item, "1")
    store.connection().set_trace_callback(None)

    planned = [s for s in statements if s.split(None, 1)[0].upper() in ("SELECT", "INSERT", "DELETE")]
    assert len(planned) >= 12
    with sqlite3.connect(path) as connection:
        for statement in planned:
            plan = connection.execute(f"EXPLAIN QUERY PLAN {statement}").fetchall()
            details = [row[-1] for row in plan]
            assert not [d for d in details if d.startswith("SCAN")], (statement, details)
    connection.close()


# The login throttle on it


def test_five_failures_block_the_pair_in_every_worker(path):
    first = LimitsLoginThrottle(SqliteLimitsStorage(LocalStore(path)))
    second = LimitsLoginThrottle(SqliteLimitsStorage(LocalStore(path)))  # another worker
    for _ in range(3):
        first.failed("victim", "10.0.0.1")
    second.failed("victim", "10.0.0.1")
    assert first.retry_after("victim", "10.0.0.1") == 0

    second.failed("victim", "10.0.0.1")

    for throttle in (first, second):
        assert FIFTEEN_MINUTES - 2 <= throttle.retry_after("victim", "10.0.0.1") <= FIFTEEN_MINUTES
        assert throttle.retry_after("victim", "10.0.0.2") == 0
        assert throttle.retry_after("other", "10.0.0.1") == 0


def test_a_success_clears_the_pair_only(path):
    throttle = LimitsLoginThrottle(SqliteLimitsStorage(LocalStore(path)), per_account="7/5 minutes")
    for _ in range(5):
        throttle.failed("user", "home")
    throttle.failed("user", "away")

    throttle.succeeded("user", "home")

    assert throttle.retry_after("user", "home") == 0
    assert throttle.retry_after("user", "away") == 0
    throttle.failed("user", "café")  # the seventh: the account's window kept the six before it
    assert 0 < throttle.retry_after("user", "anywhere") <= 5 * 60
    assert [n for key, n in rows(path).items() if "/pair/" in key] == [1, 1]


def test_a_block_lasts_until_the_oldest_failure_leaves_the_window(path):
    clock = SettableClock(time.time())
    throttle = LimitsLoginThrottle(
        SqliteLimitsStorage(LocalStore(path), clock), per_pair="2/1 minute", clock=clock
    )
    throttle.failed("user", "client")
    clock.now += 30
    throttle.failed("user", "client")
    assert 28 <= throttle.retry_after("user", "client") <= 30

    clock.now += 30.5
    assert throttle.retry_after("user", "client") == 0
    throttle.failed("user", "client")
    assert 28 <= throttle.retry_after("user", "client") <= 30  # the second failure decides now


def test_a_failing_store_counts_in_process_without_raising(path, caplog):
    throttle = LimitsLoginThrottle(SqliteLimitsStorage(broken_store(path)))

    with caplog.at_level(logging.WARNING, logger="user_service.auth"):
        for _ in range(5):
            throttle.failed("user", "client")
        assert throttle.retry_after("user", "client") > 0
        throttle.succeeded("user", "client")
        assert throttle.retry_after("user", "client") == 0

    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings  # one outage, one line
    assert warnings[0].startswith("operation=throttle.unreachable call=failed ")
    assert "DatabaseError" in warnings[0]


# Across processes

PROCESSES = 4
LIMIT = 100
ATTEMPTS = 75  # per process: 300 in all, three times the limit


def _hammer(path: str, seed: int, barrier, results) -> None:
    """Acquires entries of random cost on one shared window as fast as it can."""
    rng = random.Random(seed)
    limiter, item = MovingWindowRateLimiter(SqliteLimitsStorage(LocalStore(path))), parse(f"{LIMIT}/1 hour")
    costs = [rng.choice((1, 1, 2, 3)) for _ in range(ATTEMPTS)]
    barrier.wait()
    results.put(sum(cost for cost in costs if limiter.hit(item, "shared", cost=cost)))


def _fail_logins(path: str, barrier, results) -> None:
    throttle = LimitsLoginThrottle(SqliteLimitsStorage(LocalStore(path)))
    barrier.wait()
    for _ in range(10):
        throttle.failed("victim", "attacker")
    results.put(throttle.retry_after("victim", "attacker"))


def _run(target, *args) -> list:
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(PROCESSES), context.Queue()
    processes = [
        context.Process(target=target, args=(*args[0](n), barrier, results)) for n in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    try:
        outcomes = [results.get(timeout=60) for _ in processes]
    finally:
        for process in processes:
            process.join(30)
    assert [process.exitcode for process in processes] == [0] * PROCESSES
    return outcomes


def test_processes_on_one_file_never_get_more_than_the_limit_together(path):
    LocalStore(path).connection()  # the file and its tables, before the race
    accepted = _run(_hammer, lambda n: (str(path), n))

    assert LIMIT - 2 <= sum(accepted) <= LIMIT  # the last few slots may be left to costs too big
    assert rows(path) == {parse(f"{LIMIT}/1 hour").key_for("shared"): sum(accepted)}


def test_login_failures_from_several_processes_are_counted_once_each(path):
    LocalStore(path).connection()
    waits = _run(_fail_logins, lambda n: (str(path),))

    assert all(0 < wait <= FIFTEEN_MINUTES for wait in waits)
    counted = {key.split("/")[1]: n for key, n in rows(path).items()}
    assert counted == {"pair": 5, "account": 20, "client": 40}  # 40 failures; two limits full
