"""Engines for SQLite and PostgreSQL, configured for several processes sharing one database."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool

# How long a SQLite writer waits for another process's write lock before giving up.
SQLITE_BUSY_TIMEOUT_MS = 5000
# Execution option naming the SQLite transaction mode, for connections that only read.
SQLITE_BEGIN = "sqlite_begin"
# Execution option of connections that only read: an INSERT, UPDATE or DELETE on one raises.
READ_ONLY = "user_service_read_only"


def make_engine(url: str) -> Engine:
    """Build the engine for a database URL (`sqlite:///path`, `sqlite://`,
    `postgresql+psycopg://...`). Nothing connects until the engine is first used."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    # pre_ping replaces connections the server closed (restart, idle timeout) before use.
    # READ COMMITTED, PostgreSQL's default, whatever the server's default_transaction_isolation
    # says: read-only units of work run in autocommit, which gives them the same snapshots.
    engine = create_engine(
        parsed,
        isolation_level="READ COMMITTED",
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
        pool_recycle=1800,
        hide_parameters=True,
    )
    _refuse_writes_on_read_only(engine)
    return engine


class ReadOnlyViolation(TypeError):
    """A statement that writes, on a connection that only reads (a bug in the caller)."""


def _refuse_writes_on_read_only(engine: Engine) -> None:
    """INSERT, UPDATE and DELETE raise ReadOnlyViolation on a connection with READ_ONLY: on
    PostgreSQL a read-only unit of work runs in autocommit, where a write would be committed at
    once, and on SQLite a deferred transaction could write too."""

    @event.listens_for(engine, "before_execute")
    def _check(connection: Any, clause: Any, *args: Any) -> None:
        if getattr(clause, "is_dml", False) and connection.get_execution_options().get(READ_ONLY):
            raise ReadOnlyViolation(f"a read-only connection does not write: {clause}")


def check(engine: Engine) -> None:
    """Raise (sqlalchemy.exc.DBAPIError) if the database cannot answer a trivial query; for
    the readiness probe. On SQLite it starts a plain deferred transaction: a probe must not
    queue behind writers for the write lock."""
    with engine.connect() as connection:
        connection.execution_options(**{SQLITE_BEGIN: "DEFERRED"}).execute(text("SELECT 1"))


def _sqlite_engine(url: URL) -> Engine:
    """SQLite with foreign keys, WAL and transactions that serialise writers.

    pysqlite's own transaction handling starts no transaction for SELECT (so reads are not
    repeatable) and a deferred one for writes; two processes that read and then write can then
    both hold a read lock and fail on the upgrade. As SQLAlchemy's SQLite documentation
    recommends, pysqlite's BEGIN is disabled and SQLAlchemy emits its own, here BEGIN IMMEDIATE:
    a unit of work takes the write lock when it starts, and a second one waits for it (up to
    the busy timeout) instead of deadlocking. Every unit of work counts as a writer, since it
    cannot know in advance; a connection that only reads may ask for a deferred BEGIN with the
    SQLITE_BEGIN execution option, and with WAL it then never waits for writers.
    """
    kwargs: dict[str, Any] = {}
    if url.database in (None, "", ":memory:"):
        # One in-memory database exists per connection: share a single one between threads.
        kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    engine = create_engine(url, hide_parameters=True, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # pysqlite must not emit BEGIN itself
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA journal_mode = WAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get(SQLITE_BEGIN, "IMMEDIATE")
        connection.exec_driver_sql(f"BEGIN {mode}")

    _refuse_writes_on_read_only(engine)
    return engine
