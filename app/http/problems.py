"""Errors as RFC 9457 problem details (application/problem+json), localized, never cached.

Domain errors map to a status here and nowhere else; 5xx bodies never carry internals."""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException, InternalServerError

from adapters.i18n import N_
from adapters.outage import OutageLog
from adapters.sqlalchemy.outage import DATABASE_ERRORS, unavailable
from app.http.locale import current_locale
from domain import errors

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
STATUS_OF = {
    errors.InvalidInput: 422,
    errors.NotFound: 404,
    errors.AlreadyExists: 409,
    errors.Conflict: 409,
    errors.ConcurrentUpdate: 409,
    errors.StaleVersion: 412,
    errors.InvalidToken: 400,
    errors.Unauthenticated: 401,
    errors.PermissionDenied: 403,
    errors.Throttled: 429,
    errors.Busy: 503,
}
# The title of every status the service answers with, marked for the catalogs. RFC 9110's
# names, which http.HTTPStatus has only from Python 3.13 on for 413 and 422.
TITLE_OF = {
    400: N_("Bad Request"),
    401: N_("Unauthorized"),
    403: N_("Forbidden"),
    404: N_("Not Found"),
    405: N_("Method Not Allowed"),
    409: N_("Conflict"),
    412: N_("Precondition Failed"),
    413: N_("Content Too Large"),
    414: N_("URI Too Long"),
    415: N_("Unsupported Media Type"),
    422: N_("Unprocessable Content"),
    429: N_("Too Many Requests"),
    500: N_("Internal Server Error"),
    503: N_("Service Unavailable"),
}
# Details for errors raised by the framework, whose own descriptions are long and English.
DETAIL_OF = {
    400: N_("The request could not be understood."),
    401: N_("Authentication is required: the access token is missing, invalid or expired."),
    404: N_("Nothing was found at this URL."),
    405: N_("This method is not allowed on this URL."),
    412: N_("The resource has changed since you last read it."),
    413: N_("The request body is too large."),
    415: N_("The request body must be JSON, sent with Content-Type: application/json."),
    422: N_("The input is invalid."),
    500: N_("The server could not complete the request; it has been logged."),
    503: N_("The database is unavailable; nothing was changed. Try again shortly."),
}
RETRY_AFTER = 5  # seconds a client is asked to wait while the database is out of reach
DATABASE_UNAVAILABLE = DATABASE_ERRORS  # errors whose handler tells a 503 from a 500 (`unavailable`)
_DATABASE = OutageLog("database", log, what="the database", effect="requests that need it answer 503")


def problem(
    status: int, detail: str | None = None, errors: Any = None, headers: dict[str, str] | None = None
) -> Response:
    catalogs = current_app.extensions["container"].catalogs()
    locale = current_locale()
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": catalogs.gettext(TITLE_OF.get(status) or HTTPStatus(status).phrase, locale),
        "status": status,
        "detail": detail or catalogs.gettext(DETAIL_OF.get(status, HTTPStatus(status).description), locale),
    }
    if errors:
        body["errors"] = translate(errors, catalogs, locale)
    response = Response(json.dumps(body, ensure_ascii=False), status, mimetype=PROBLEM_JSON, headers=headers)
    response.headers["Cache-Control"] = "no-store"
    return response


def from_http_exception(error: HTTPException) -> Response:
    if isinstance(error, InternalServerError) or (error.code or 500) >= 500:
        original = getattr(error, "original_exception", None) or error
        log.error("operation=request.failed", exc_info=original)
        return problem(500)
    headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
    data = getattr(error, "data", None) or {}
    headers.update(data.get("headers") or {})
    messages = data.get("messages")
    if isinstance(messages, dict) and len(messages) == 1:
        messages = next(iter(messages.values()))  # one location (json or query): drop the level
    detail = data.get("message")
    if detail is None and error.description != type(error).description:
        detail = error.description  # one of ours, e.g. a malformed If-Match: say which header
    if error.code == 400 and isinstance(messages, list):  # e.g. webargs' "Invalid JSON body."
        detail, messages = " ".join(messages), None
    if detail:
        detail = current_app.extensions["container"].catalogs().gettext(detail, current_locale())
    return problem(error.code or 500, detail, messages, headers)


def from_domain_error(error: errors.DomainError) -> Response:
    status = next(s for kind, s in STATUS_OF.items() if isinstance(error, kind))
    catalogs = current_app.extensions["container"].catalogs()
    detail = catalogs.render(error.message, current_locale())
    headers = None
    if isinstance(error, errors.Throttled | errors.Busy):
        headers = {"Retry-After": str(error.retry_after)}
    elif isinstance(error, errors.Unauthenticated):
        headers = {"WWW-Authenticate": 'Bearer realm="user-service"'}  # RFC 6750 §3
    field_errors = error.errors if isinstance(error, errors.InvalidInput) else None
    return problem(status, detail, field_errors, headers)


def translate(value: Any, catalogs, locale: str) -> Any:
    if isinstance(value, dict):
        return {str(k): translate(v, catalogs, locale) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [translate(v, catalogs, locale) for v in value]
    return catalogs.render(value, locale) if not isinstance(value, (int, float)) else value


def note_database_outage(error: Exception) -> None:
    """Log and count a request that found the database out of reach (once per outage)."""
    g.database_unavailable = True  # whatever the request answers, it did not reach the database
    _DATABASE.failed("request", error)


def database_unavailable(error: Exception) -> Response:
    if not unavailable(error):
        log.error("operation=request.failed", exc_info=error)
        return problem(500)
    note_database_outage(error)
    return problem(503, headers={"Retry-After": str(RETRY_AFTER)})


def init_app(app: Flask) -> None:
    app.register_error_handler(errors.DomainError, from_domain_error)
    for kind in DATABASE_UNAVAILABLE:
        app.register_error_handler(kind, database_unavailable)

    @app.after_request
    def database_answers(response: Response) -> Response:
        # A write that succeeded went through the database: the outage log's last line.
        # A view may say (GraphQL answers 200 whether or not a mutation ran or failed).
        reached = g.get("database_answered")
        if reached is None:
            reached = response.status_code < 300 and request.method not in ("GET", "HEAD")
        if _DATABASE.down and reached and not g.get("database_unavailable"):
            _DATABASE.answered()
        return response
