"""/metrics, /health/live and /health/ready of a relay or worker process, on a port of its own
(`user-service worker --port N`): what the web app's endpoints are to a gunicorn worker.

Ready means every check passes: the database answers, and the broker is connected (a worker
consuming) or answering (a relay whose last publish was confirmed). A process that is alive but
not ready keeps its events safe (in the outbox, or in its queues) and only says so; the
supervisor decides what to do. The server is the standard library's, a thread per connection
(daemon threads, each socket with a timeout), in a daemon thread beside the process's work: a
client that connects and sends nothing, or a check that waits on a database out of reach,
holds up neither the other probes nor the process's shutdown.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CONTENT_TYPE_LATEST

from app.http.metrics import exposition

log = logging.getLogger("user_service.events")

Check = Callable[[], bool]  # True: ok; False or an exception: not


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # shutdown() does not wait for a connection in hand
    block_on_close = False


class _Quiet(WSGIRequestHandler):
    timeout = 10  # seconds a connection may stay silent

    def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds: no line each
        pass


def probe_app(checks: Mapping[str, Check]) -> Callable[..., Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return _answer(start_response, "200 OK", exposition(), CONTENT_TYPE_LATEST)
        if path == "/health/live":
            return _json(start_response, "200 OK", {"status": "ok"})
        if path == "/health/ready":
            results = {name: _run(name, check) for name, check in checks.items()}
            ok = all(result == "ok" for result in results.values())
            status = "200 OK" if ok else "503 Service Unavailable"
            return _json(start_response, status, {"status": "ok" if ok else "unavailable", "checks": results})
        return _json(start_response, "404 Not Found", {"status": "not found"})

    return app


def serve(port: int, checks: Mapping[str, Check], host: str = "127.0.0.1") -> WSGIServer:
    """Serve the probes on `host:port` in a daemon thread; `shutdown()` the result to stop."""
    server = make_server(host, port, probe_app(checks), server_class=_Server, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, name="probe", daemon=True).start()
    log.info("operation=probe.listen address=http://%s:%d", host, server.server_port)
    return server


def _run(name: str, check: Check) -> str:
    try:
        return "ok" if check() else "unavailable"
    except Exception as error:  # any failure means "not ready"; the log says which
        log.warning("operation=health.ready check=%s unavailable: %r", name, error)
        return "unavailable"


def _json(start_response: Callable[..., Any], status: str, body: dict[str, Any]) -> list[bytes]:
    return _answer(start_response, status, json.dumps(body).encode(), "application/json")


def _answer(start_response: Callable[..., Any], status: str, body: bytes, content_type: str) -> list[bytes]:
    start_response(
        status,
        [("Content-Type", content_type), ("Content-Length", str(len(body))), ("Cache-Control", "no-store")],
    )
    return [body]
