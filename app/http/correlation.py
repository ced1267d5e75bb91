"""The correlation id of each request (docs/events.md): the client's `X-Request-ID` when it is
1-200 visible ASCII characters, else the trace id of a valid W3C `traceparent`, else a new one.
It is current (adapters.events.correlation) while the request is handled, so every envelope
published for it carries it, and every response echoes it as `X-Request-ID`."""

from __future__ import annotations

import re
from contextlib import ExitStack

from flask import Flask, Response, g, request

from adapters.events import correlation

HEADER = "X-Request-ID"
# Middleware in front of Flask that chose the id already (the WSGI hot path, say) leaves it
# here, so a request it passes on keeps that id. Clients cannot set a WSGI key with a dot.
ENVIRON_KEY = "user_service.correlation_id"

_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,200}")
# version-traceid-parentid-flags; versions after 00 may append fields after a dash.
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")


def trace_id(traceparent: str | None) -> str | None:
    """The trace id of a valid traceparent header, or None."""
    match = _TRACEPARENT.fullmatch(traceparent.strip(" \t")) if traceparent else None
    if match is None:
        return None
    version, trace, parent, _flags, more = match.groups()
    if version == "ff" or (version == "00" and more) or not trace.strip("0") or not parent.strip("0"):
        return None
    return trace


def correlation_id_from(request_id: str | None, traceparent: str | None) -> str:
    """The id for a request with these header values (None when absent)."""
    if request_id is not None and _REQUEST_ID.fullmatch(request_id):
        return request_id
    return trace_id(traceparent) or correlation.new_id()


def request_correlation_id() -> str:
    """The current request's id, chosen once per request."""
    if "correlation_id" not in g:
        g.correlation_id = request.environ.get(ENVIRON_KEY) or correlation_id_from(
            request.headers.get(HEADER), request.headers.get("traceparent")
        )
    return g.correlation_id


def init_app(app: Flask) -> None:
    """Register before the hooks that may publish or log, so they run inside the request's id."""

    @app.before_request
    def begin() -> None:
        scope = ExitStack()
        scope.enter_context(correlation.use(request_correlation_id()))
        g.correlation_scope = scope

    @app.after_request
    def echo(response: Response) -> Response:
        response.headers[HEADER] = request_correlation_id()
        return response

    @app.teardown_request
    def end(_error: BaseException | None) -> None:
        scope = g.pop("correlation_scope", None)
        if scope is not None:
            scope.close()
