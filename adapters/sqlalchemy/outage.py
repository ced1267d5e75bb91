"""What says "the database is out of reach or too busy", not "a bug": shared by the HTTP
error mapping (503, not 500), the event worker (retried for as long as it lasts, never
dead-lettered) and the outbox relay (waits and claims again, never exits)."""

from __future__ import annotations

import sqlalchemy.exc

# What a database out of reach (or too busy to answer: a pool with no free connection, a SQLite
# file locked past its timeout) raises; the transaction was rolled back with it.
DATABASE_ERRORS = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
)
# PostgreSQL's connection exceptions (08), insufficient resources (53) and operator intervention
# (57P: shutting down, cannot connect now); SQLite's lock, open and I/O failures. A missing
# table or column is a bug.
_UNAVAILABLE_STATES = ("08", "53", "57P")
_UNAVAILABLE_SQLITE = ("database is locked", "unable to open", "disk i/o error", "database or disk is full")


class DatabaseUnavailable(Exception):
    """The database could not be reached (the cause is chained): a dependency down, not a bad
    message or a bug."""


def unavailable(error: BaseException) -> bool:
    """Whether `error` (one of DATABASE_ERRORS) says the database is out of reach."""
    if not isinstance(error, DATABASE_ERRORS):
        return False
    if isinstance(error, sqlalchemy.exc.TimeoutError) or getattr(error, "connection_invalidated", False):
        return True
    original = getattr(error, "orig", None)
    state = getattr(original, "sqlstate", None)
    if state is not None:
        return str(state).startswith(_UNAVAILABLE_STATES)
    message = str(original or error).lower()
    if "sqlite" in type(original).__module__:
        return any(part in message for part in _UNAVAILABLE_SQLITE)
    return True  # no state at all: the connection could not be made
