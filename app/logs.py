"""Logging for the processes this project starts (CLI, gunicorn workers via wsgi.py)."""

from __future__ import annotations

import logging
import os

# Libraries whose INFO lines say what they do on every start (Alembic: "Context impl SQLiteImpl."
# and one line per migration); the service logs the outcome itself. Shown with LOG_LEVEL=DEBUG.
QUIET = ("alembic",)


def configure(level: str | None = None) -> None:
    """At LOG_LEVEL's level by default; a level it does not name is left to the settings check
    to report, and INFO is used meanwhile."""
    level = (level or os.environ.get("LOG_LEVEL") or "INFO").upper()
    if level not in logging.getLevelNamesMapping():
        level = "INFO"
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s",
    )
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)
