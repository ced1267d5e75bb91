"""Apply the Alembic migrations from code, with no alembic.ini needed at runtime."""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

SCRIPT_LOCATION = Path(__file__).with_name("migrations")


def alembic_config() -> Config:
    config = Config()
    # Config values are %-interpolated: a literal % in the path must be doubled.
    config.set_main_option("script_location", str(SCRIPT_LOCATION).replace("%", "%%"))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database to `revision` in one transaction (alembic's "sharing a
    connection" recipe: env.py uses the connection passed in `config.attributes`)."""
    _run(engine, command.upgrade, revision)


def downgrade(engine: Engine, revision: str) -> None:
    _run(engine, command.downgrade, revision)


def _run(engine: Engine, step: object, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        step(config, revision)  # type: ignore[operator]


def pending(engine: Engine) -> bool:
    """Whether the database's schema is behind the newest migration (or missing)."""
    with engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads()) != _code_heads()


@functools.cache
def _code_heads() -> frozenset[str]:
    """The newest revisions of the migrations installed with this code (read once: /health/ready
    asks on every probe)."""
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())
