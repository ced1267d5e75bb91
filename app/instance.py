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
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from adapters.sqlalchemy.engine import make_engine
from adapters.sqlalchemy.migrate import pending, upgrade

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
    instance.mkdir(mode=0o700, parents=True, exist_ok=True)
    return instance


def shared_secret(instance_path: str) -> str:
    """The signing key of every worker and restart on this host: generated once into the
    instance folder (mode 0600), then read. Created under a temporary name and linked into
    place, so a worker never reads a half-written key and two never write different ones."""
    path = folder(instance_path) / SECRET_FILE
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
    embedded = url.get_backend_name() == "sqlite"
    engine = make_engine(settings["database_url"])
    try:
        if embedded and url.database not in (None, "", ":memory:"):
            database = Path(url.database)
            database.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with open(database.parent / MIGRATION_LOCK, "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
                if pending(engine):
                    upgrade(engine)
                    log.info("operation=migrate database=%s: schema brought up to date", database)
        elif embedded or migrate:
            upgrade(engine)
        else:
            try:
                behind = pending(engine)
            except OperationalError as error:
                log.warning("operation=schema.check database unreachable: %s", error.orig or error)
                return
            if behind:
                shown = url.render_as_string(hide_password=True)
                raise StartupError(
                    f"the schema of {shown} is behind this version: "
                    "run `user-service migrate`, then start again"
                )
    finally:
        engine.dispose()


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
