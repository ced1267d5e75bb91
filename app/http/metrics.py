"""GET /metrics: the Prometheus counters, summed over every worker when PROMETHEUS_MULTIPROC_DIR
is set (gunicorn with several workers), else this process's own. With METRICS_TOKEN it asks
for `Authorization: Bearer <token>` (a scraper's `authorization` setting); in production
without one it is not served (app.factory)."""

from __future__ import annotations

import hmac
import os

from flask import Flask, Response, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from werkzeug.exceptions import NotFound


def exposition() -> bytes:
    """The counters in Prometheus' text format: every process's in PROMETHEUS_MULTIPROC_DIR when
    it is set, else this process's own (the web app's /metrics and the relay's and worker's)."""
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    return generate_latest(registry)


def init_app(app: Flask, token: str | None = None) -> None:
    expected = f"Bearer {token}".encode() if token is not None else None

    @app.get("/metrics")
    def metrics() -> Response:
        given = request.headers.get("Authorization", "").encode()
        if expected is not None and not hmac.compare_digest(given, expected):
            raise NotFound()  # says nothing of what is here
        response = Response(exposition(), content_type=CONTENT_TYPE_LATEST)
        response.headers["Cache-Control"] = "no-store"
        return response
