"""The local store's file itself (adapters.local.store): made private, emptied after a reboot
with a new epoch, and every statement of the cache and the session state found through an index
however many rows the tables hold."""

from __future__ import annotations

import sqlite3
from uuid import uuid4

import pytest

from adapters.local import LocalStore, SqliteTagCache, SqliteUserStateStore
from tests.contracts.session_state.conftest import full_state

_NOT_TABLES = ("VIRTUAL TABLE INDEX 1:", "CONSTANT ROW")


@pytest.fixture
def path(tmp_path):
    return tmp_path / "private" / "cache.db"


def test_the_file_and_its_folder_are_private(path):
    LocalStore(path).connection()
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700


def test_a_reboot_empties_the_store_and_changes_the_epoch(path, faker):
    before = LocalStore(path, boot_id="boot-1")
    cache, states = SqliteTagCache(before), SqliteUserStateStore(before)
    snapshot = cache.tag_versions("user.1", ["user"])
    assert cache.set("user.1", b"v", ttl=60, versions=snapshot)
    state = full_state(faker)
    states.write(state)

    same_boot = LocalStore(path, boot_id="boot-1")  # another worker, or a restart: all kept
    assert SqliteTagCache(same_boot).get("user.1") is not None
    assert SqliteUserStateStore(same_boot).read(state.user_id, reader="test") is not None

    after = LocalStore(path, boot_id="boot-2")
    cache_after = SqliteTagCache(after)
    assert cache_after.get("user.1") is None
    assert SqliteUserStateStore(after).read(state.user_id, reader="test") is None
    assert cache_after.tag_versions("user.1", ["user"]) != snapshot  # the epoch moved on
    assert not cache_after.set("user.1", b"old", ttl=60, versions=snapshot)  # read before: refused


def test_a_store_opened_for_another_database_starts_empty(path, faker):
    first = LocalStore(path, owner="sqlite:1:100")
    cache = SqliteTagCache(first)
    snapshot = cache.tag_versions("user.1", ["user"])
    assert cache.set("user.1", b"v", ttl=60, versions=snapshot)
    assert SqliteTagCache(LocalStore(path, owner="sqlite:1:100")).get("user.1") is not None

    replaced = SqliteTagCache(LocalStore(path, owner="sqlite:1:200"))  # the database file replaced
    assert replaced.get("user.1") is None
    assert not replaced.set("user.1", b"old", ttl=60, versions=snapshot)


def test_no_statement_of_the_cache_or_the_state_scans_a_table(path, faker):
    store = LocalStore(path)
    cache, states = SqliteTagCache(store, sweep_every=1), SqliteUserStateStore(store, sweep_every=1)
    for n in range(50):
        cache.set(f"user.{n}", b"v", ttl=60, versions=cache.tag_versions(f"user.{n}", ["user", f"user.{n}"]))
        states.write(full_state(faker))
    state = full_state(faker)
    statements: list[str] = []
    store.connection().set_trace_callback(statements.append)

    versions = cache.tag_versions("user.1", ["user", "user.1"])
    cache.get("user.1")
    cache.set("user.1", b"w", ttl=60, versions=versions)
    cache.invalidate("user.1")
    cache.acquire("user.2", 5)
    cache.release("user.2")
    cache.delete("user.3")
    states.write(state)
    states.read(state.user_id, reader="test")
    states.delete(uuid4())
    store.connection().set_trace_callback(None)

    verbs = ("SELECT", "INSERT", "DELETE", "UPDATE")
    planned = [s for s in statements if s.split(None, 1)[0].upper() in verbs]
    assert len(planned) >= 10
    with sqlite3.connect(path) as connection:
        for statement in planned:
            details = [row[-1] for row in connection.execute(f"EXPLAIN QUERY PLAN {statement}")]
            # json_each walks the entry's own few recorded versions; a constant row is the values
            scans = [d for d in details if d.startswith("SCAN") and not d.endswith(_NOT_TABLES)]
            assert not scans, (statement, details)
    connection.close()
