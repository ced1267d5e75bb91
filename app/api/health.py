"""/health/live and /health/ready for process supervisors and load balancers."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify

from adapters.caching.resilient import CacheUnavailable
from adapters.sqlalchemy.engine import check
from adapters.sqlalchemy.migrate import schema_state

log = logging.getLogger(__name__)
blp = Blueprint("health", __name__, url_prefix="/health")


@blp.get("/live")
def live():
    return jsonify(status="ok")


@blp.get("/ready")
def ready():
    container = current_app.extensions["container"]
    checks = {}
    if container.config.storage() == "sql":
        try:
            check(container.storage.engine())
            checks["database"] = "ok"
            # A schema missing, behind or ahead of the code answers errors, not data: not ready.
            state = schema_state(container.storage.engine())
            checks["schema"] = "ok" if state == "current" else state
        except Exception as error:  # any failure means "not ready"; the log says which
            log.warning("operation=health.ready database unavailable: %s", error)
            checks["database"] = "unavailable"
    ok = all(state == "ok" for state in checks.values())
    # The cache is reported, but does not make the service unready: without it, reads are
    # served from the database (slower, never wrong), which beats taking every worker out.
    if (cache := container.caching.cache()) is not None:
        try:
            cache.get("health")
            checks["cache"] = "ok"
        except CacheUnavailable:
            checks["cache"] = "degraded"
    response = jsonify(status="ok" if ok else "unavailable", checks=checks)
    response.status_code = 200 if ok else 503
    response.headers["Cache-Control"] = "no-store"
    return response
