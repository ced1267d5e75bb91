"""Apply the Alembic migrations from code, with no alembic.ini needed at runtime."""

from __future__ import annotations

import functools
from collections.abc import Callable
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


def _run(engine: Engine, step: Callable[[Config, str], None], revision: str) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        step(config, revision)


def schema_state(engine: Engine) -> str:
    """ "current", "behind" (missing, or older than the newest migration) or "ahead" (made by a
    newer version of the service: a revision these migrations do not know)."""
    with engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    if current == _code_heads():
        return "current"
    return "ahead" if current - _known_revisions() else "behind"


def pending(engine: Engine) -> bool:
    """Whether the database's schema is not the one of this code (behind, missing or ahead)."""
    return schema_state(engine) != "current"


@functools.cache
def _code_heads() -> frozenset[str]:
    """The newest revisions of the migrations installed with this code (read once: /health/ready
    asks on every probe)."""
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


@functools.cache
def _known_revisions() -> frozenset[str]:
    return frozenset(
        script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()
    )
