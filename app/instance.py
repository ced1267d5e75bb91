"""What every process of the service does before it serves: the instance folder, the signing
secret all workers share, and the schema (DESIGN §9).

Each gunicorn worker builds its own app (`wsgi:app`), so all of this is safe to run in N
processes at once: the secret is created once and read by the others, and migrations run under
a file lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from adapters.sqlalchemy.engine import make_engine
from adapters.sqlalchemy.migrate import schema_state, upgrade

log = logging.getLogger("user_service.instance")

SECRET_FILE = "secret_key"
MIGRATION_LOCK = ".migrate.lock"


class StartupError(RuntimeError):
    """The service cannot serve as configured; the message says what to do, in one line (or
    `problems`, one line each)."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


def folder(path: str) -> Path:
    """The instance folder, created (mode 0700: it holds the secret and the local store)."""
    instance = Path(path)
    try:
        instance.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise StartupError(
            f"INSTANCE_PATH: cannot create the instance folder {path}: {error.strerror}"
        ) from None
    return instance


def shared_secret(instance_path: str) -> str:
    """The signing key of every worker and restart on this host: generated once into the
    instance folder (mode 0600), then read. Created under a temporary name and linked into
    place, so a worker never reads a half-written key and two never write different ones."""
    path = folder(instance_path) / SECRET_FILE
    try:
        return _shared_secret(path)
    except OSError as error:
        raise StartupError(
            f"cannot keep the signing key in {path}: {error.strerror}; or set SECRET_KEY"
        ) from None


def _shared_secret(path: Path) -> str:
    with contextlib.suppress(FileNotFoundError):
        return _read_secret(path)
    temporary = path.with_name(f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(48) + "\n")
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):  # another worker was first: use its key
            os.link(temporary, path)
            log.info("operation=instance.secret path=%s: generated the signing key", path)
    finally:
        os.unlink(temporary)
    return _read_secret(path)


def _read_secret(path: Path) -> str:
    secret = path.read_text().strip()
    if len(secret.encode()) < 32:
        raise StartupError(f"{path} holds no usable key (under 32 bytes): delete it to have one made")
    return secret


def prepare_database(settings: dict[str, Any], *, migrate: bool = False) -> None:
    """The embedded SQLite database is migrated here, under a file lock; any other database is
    only checked, never migrated implicitly (`migrate=True` is `user-service migrate`): a schema
    behind the code stops the process with one line naming `user-service migrate`. An
    unreachable database is left to /health/ready."""
    if settings["storage"] != "sql":
        return
    url = make_url(settings["database_url"])
    shown = url.render_as_string(hide_password=True)
    engine = make_engine(settings["database_url"])
    try:
        if url.get_backend_name() == "sqlite":
            _migrate_embedded(engine, Path(str(url.database)), shown)
        elif migrate:
            _refuse_ahead(engine, shown)
            upgrade(engine)
        else:
            try:
                state = schema_state(engine)
            except OperationalError as error:
                log.warning("operation=schema.check database unreachable: %s", error.orig or error)
                return
            _refuse_ahead(engine, shown, state)
            if state == "behind":
                raise StartupError(
                    f"the schema of {shown} is behind this version: "
                    "run `user-service migrate`, then start again"
                )
    finally:
        engine.dispose()


def _migrate_embedded(engine: Engine, database: Path, shown: str) -> None:
    """Under a lock file beside the database, so that workers starting together migrate once."""
    try:
        database.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock = open(database.parent / MIGRATION_LOCK, "a")  # noqa: SIM115 (held below)
    except OSError as error:
        raise StartupError(f"DATABASE_URL: cannot create {database}: {error.strerror}") from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        state = schema_state(engine)
        _refuse_ahead(engine, shown, state)
        if state == "behind":
            upgrade(engine)
            log.info("operation=migrate database=%s: schema brought up to date", database)


def _refuse_ahead(engine: Engine, shown: str, state: str | None = None) -> None:
    if (state or schema_state(engine)) == "ahead":
        raise StartupError(
            f"the schema of {shown} was made by a newer version of the service (a migration this "
            "version does not know): run that version, or downgrade the schema with it first"
        )


def database_identity(settings: dict[str, Any]) -> str:
    """Which database the local store caches for: a SQLite file by device and inode (a file
    replaced by another, even at the same path, is another database), any other by its URL."""
    if settings["storage"] != "sql":
        return "memory"
    url = make_url(settings["database_url"])
    if url.get_backend_name() == "sqlite":
        found = os.stat(str(url.database))
        return f"sqlite:{found.st_dev}:{found.st_ino}"
    return url.set(password=None).render_as_string(hide_password=False)


def open_local_store(store: Any, settings: dict[str, Any]) -> None:
    """Opened at start, so that a path it cannot use stops the process with one line."""
    try:
        store.connection()
    # adapters.local.store.ERRORS, spelt out: importing adapters.local here would load the
    # Prometheus counters in `run`'s master before it sets up their multiprocess directory.
    except (sqlite3.Error, OSError) as error:
        raise StartupError(
            f"CACHE_URL: cannot open the local store {settings['cache']['path']}: {error}"
        ) from None


def check_processes(settings: dict[str, Any], workers: int) -> None:
    """The in-process stores hold one process's data: with several workers, a write on one would
    leave the others serving the old data and accepting ended sessions."""
    if workers <= 1:
        return
    problems = []
    if settings["cache"]["backend"] == "memory":
        problems.append(
            f"CACHE_URL='memory' is one process's cache, and {workers} workers were asked for: "
            "unset CACHE_URL (the host's shared local store), use redis://..., or run one worker "
            "(threads scale it instead)"
        )
    if settings["storage"] == "memory":
        problems.append(
            f"DATABASE_URL='memory://' is one process's database, and {workers} workers were asked "
            "for: use a SQLite file or PostgreSQL, or run one worker"
        )
    if problems:
        raise StartupError("; ".join(problems), problems)


def describe(error: Exception) -> str:
    """What a person reads when the service cannot start: one line per problem, no traceback."""
    problems = getattr(error, "problems", None) or [str(error)]
    return "\n".join(["user-service cannot start:", *(f"  {problem}" for problem in problems)])
