"""One SQLite file that every process on this host shares: the embedded default's cache server.

The read cache, the session state and the login throttle of the embedded default live here
(adapters.local.*): what Redis is to a production deployment, a file in the instance folder
is to one host, with nothing to install or start. SQLite gives what those adapters need and
a key-value library over it (diskcache) does not expose: one statement that checks several
rows and writes another (the tag cache's conditional set, a moving window's acquire), and
transactions over several rows that other processes see whole or not at all, at a few
microseconds a read.

Every thread has its own connection (sqlite3 connections are not shared between threads), made
again in a forked child (a child must not use its parent's). In WAL mode readers never wait for
the writer and see every transaction committed before they started: a write acknowledged by one
worker is visible to the next read of every other (read-your-writes across processes). Writers
serialise on the file's write lock for the few microseconds each holds it.

What is stored is a cache: `synchronous=NORMAL` keeps it consistent after a crash of any
process, and the whole store is emptied when the machine has rebooted since it was last opened
(a power loss may lose the last transactions, such as an invalidation: nothing recorded before
it is kept), and when it is opened for another database than the one it cached (`owner`: a
database file replaced by another, another DATABASE_URL). The tag cache's epoch changes with
it, as when a Redis server restarts empty.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("user_service.cache")

# What the store raises when it cannot serve (a lock held past the busy timeout, a full disk, a
# path it cannot use): what its resilient decorators meet as an outage.
ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, OSError)
BUSY_TIMEOUT_MS = 2000  # a writer holds the lock for microseconds; this much means trouble
EPOCH = "~epoch"  # the tag cache's pseudo-tag; real tags never start with "~"
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cache_entries (
    key TEXT PRIMARY KEY, value BLOB NOT NULL, expires_at REAL NOT NULL, delta REAL NOT NULL,
    versions TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS cache_entries_expiry ON cache_entries (expires_at);
CREATE TABLE IF NOT EXISTS cache_tags (tag TEXT PRIMARY KEY, version INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cache_leases (
    key TEXT PRIMARY KEY, token TEXT NOT NULL, until REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS cache_leases_expiry ON cache_leases (until);
CREATE TABLE IF NOT EXISTS user_states (
    user_id BLOB PRIMARY KEY, created_at REAL NOT NULL, expires_at REAL NOT NULL,
    identity BLOB, identity_v INTEGER, sessions BLOB, sessions_v INTEGER,
    roles BLOB, roles_v INTEGER, subscription BLOB, subscription_v INTEGER
);
CREATE INDEX IF NOT EXISTS user_states_expiry ON user_states (expires_at);
CREATE TABLE IF NOT EXISTS throttle_hits (
    key TEXT NOT NULL, at REAL NOT NULL, expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS throttle_hits_key ON throttle_hits (key, at);
CREATE INDEX IF NOT EXISTS throttle_hits_expiry ON throttle_hits (expires_at);
CREATE TABLE IF NOT EXISTS throttle_counters (
    key TEXT PRIMARY KEY, count INTEGER NOT NULL, expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS throttle_counters_expiry ON throttle_counters (expires_at);
"""
# Emptied together when the store starts afresh (a reboot, see the module docstring).
TABLES = ("cache_entries", "cache_tags", "cache_leases", "user_states", "throttle_hits", "throttle_counters")

_forks = 0  # forks of this process so far: a child must not use its parent's connections


def _forked() -> None:
    global _forks
    _forks += 1


os.register_at_fork(after_in_child=_forked)


def _boot_id() -> str | None:
    try:
        return _BOOT_ID.read_text().strip() or None
    except OSError:  # not Linux: a reboot is not detected (the docs say to delete the file)
        return None


class LocalStore:
    """The shared file at `path`, created (mode 0600, its folder 0700) with its tables on first
    use. Cheap to construct: nothing is opened until a thread first asks for its connection."""

    def __init__(self, path: str | os.PathLike[str], *, owner: str = "", boot_id: str | None = None) -> None:
        """`owner` names what the store caches (the database); `boot_id` is the machine's (read
        from the kernel when not given)."""
        self.path = Path(path)
        self._generation = {"boot_id": boot_id if boot_id is not None else _boot_id(), "owner": owner}
        self._local = threading.local()
        self._ready = False
        self._ready_lock = threading.Lock()

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, in autocommit mode: each statement is its own transaction
        unless `transaction()` groups several."""
        local = self._local
        if getattr(local, "forks", None) != _forks:
            local.connection = self._connect()
            local.forks = _forks
        return local.connection

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT: the write lock from the start, so a read-then-write
        never fails halfway on another process's write."""
        connection = self.connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def _connect(self) -> sqlite3.Connection:
        if not self._ready:
            with self._ready_lock:
                if not self._ready:
                    self._create()
                    self._ready = True
        return self._open()

    def _open(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        connection.execute("PRAGMA synchronous = NORMAL")  # WAL itself is a property of the file
        return connection

    def _create(self) -> None:
        """The file in WAL mode, its tables, and a fresh start after a reboot; under a lock file,
        so that processes starting together do it one at a time (switching a file to WAL needs
        it to themselves)."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # the cache holds emails and session digests
            os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            self._create_tables()

    def _create_tables(self) -> None:
        connection = self._open()
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            connection.executescript(SCHEMA)
            connection.execute("BEGIN IMMEDIATE")
            try:
                stored = dict(connection.execute("SELECT name, value FROM meta").fetchall())
                changed = [
                    name
                    for name, value in self._generation.items()
                    if value is not None and stored.get(name) != value
                ]
                if changed:
                    if stored:
                        log.warning(
                            "operation=cache.local path=%s changed=%s: emptied, a reboot or another database",
                            self.path,
                            ",".join(changed),
                        )
                    for table in TABLES:
                        connection.execute(f"DELETE FROM {table}")  # noqa: S608 (fixed names)
                    for name, value in self._generation.items():
                        if value is not None:
                            connection.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, value))
                # The epoch of the tag cache: a new one whenever the tags start again from 0.
                connection.execute(
                    "INSERT OR IGNORE INTO cache_tags VALUES (?, ?)", (EPOCH, secrets.randbelow(2**62) + 1)
                )
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
        finally:
            connection.close()
