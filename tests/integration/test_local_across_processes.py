"""The local store's guarantees between real processes, as gunicorn workers use it: I6 (no stale
set after an invalidation made by another process) and I2/I3 (compare-and-set per group: writers
of different groups in different processes never erase each other, and an older version never
beats a newer one, whoever writes last)."""

from __future__ import annotations

import multiprocessing
import random
from uuid import UUID, uuid4

from adapters.local import LocalStore, SqliteTagCache, SqliteUserStateStore
from domain.session_state.model import Group, UserState, Versioned
from tests.contracts.session_state.test_session_state_contract import value_for

PROCESSES = 4
WRITES = 200  # per process
TIMEOUT = 60


def _read_then_set(path: str, snapshot_taken, invalidated, results) -> None:
    """A worker's read: the tag snapshot first, then (the database read) a set of what it read."""
    cache = SqliteTagCache(LocalStore(path))
    versions = cache.tag_versions("user.1", ["user", "user.1"])
    snapshot_taken.set()
    invalidated.wait(TIMEOUT)  # another worker commits a write and invalidates meanwhile
    results.put(cache.set("user.1", b"read before the write", ttl=60, versions=versions))


def test_i6_a_set_from_before_another_process_invalidated_is_refused(tmp_path):
    path = str(tmp_path / "cache.db")
    context = multiprocessing.get_context("spawn")
    snapshot_taken, invalidated, results = context.Event(), context.Event(), context.Queue()
    reader = context.Process(target=_read_then_set, args=(path, snapshot_taken, invalidated, results))
    reader.start()
    try:
        assert snapshot_taken.wait(TIMEOUT)
        SqliteTagCache(LocalStore(path)).invalidate("user.1")
        invalidated.set()
        stored = results.get(timeout=TIMEOUT)
    finally:
        reader.join(TIMEOUT)
    assert reader.exitcode == 0
    assert stored is False
    assert SqliteTagCache(LocalStore(path)).get("user.1") is None


def _write_groups(path: str, user_id: str, seed: int, start, results) -> None:
    """Writes of one or two random groups at random versions, in a random order."""
    rng = random.Random(seed)
    store = SqliteUserStateStore(LocalStore(path))
    highest: dict[str, int] = {}
    start.wait(TIMEOUT)
    for _ in range(WRITES):
        groups = rng.sample(list(Group), rng.choice((1, 2)))
        written = {group: rng.randrange(1, 10_000) for group in groups}
        store.write(
            UserState(UUID(user_id), **{g.value: Versioned(v, value_for(g, v)) for g, v in written.items()})
        )
        for group, version in written.items():
            highest[group.value] = max(highest.get(group.value, 0), version)
    results.put(highest)


def test_i2_i3_concurrent_writers_in_processes_leave_every_group_at_its_newest_version(tmp_path):
    path, user_id = str(tmp_path / "cache.db"), uuid4()
    LocalStore(path).connection()  # the file and its tables, before the race
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    writers = [
        context.Process(target=_write_groups, args=(path, str(user_id), seed, start, results))
        for seed in range(PROCESSES)
    ]
    for writer in writers:
        writer.start()
    start.set()
    try:
        highest = [results.get(timeout=TIMEOUT) for _ in writers]
    finally:
        for writer in writers:
            writer.join(TIMEOUT)
    assert [writer.exitcode for writer in writers] == [0] * PROCESSES

    stored = SqliteUserStateStore(LocalStore(path)).read(user_id, reader="test")
    assert stored is not None
    for group in Group:
        newest = max(found.get(group.value, 0) for found in highest)
        versioned = getattr(stored, group.value)
        assert versioned.version == newest, group  # no older write won, none was lost
        assert versioned.value == value_for(group, newest)  # and its value is that write's
