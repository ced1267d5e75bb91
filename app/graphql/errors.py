"""GraphQL errors as the REST problems say them: the same refusals, localized by
Accept-Language, each with a stable `code`, REST's `status` and, for bad input, per-field
messages in `extensions`; anything else is masked (and logged), as a 500's body is.

An error of the request itself (a syntax error, an unknown field, a limit exceeded, a variable
of the wrong type) is graphql-core's, with no path: its message is kept, for the client's
developer. Any other is an exception: a domain error is translated, the rest masked, wherever
it was raised (a resolver, or an extension or rule while parsing or validating)."""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app
from graphql import GraphQLError
from werkzeug.exceptions import HTTPException

from app.http import problems
from app.http.locale import current_locale
from domain import errors

log = logging.getLogger(__name__)

# Stable codes, one per kind of refusal; `status` says which REST status means the same.
CODE_OF = {
    errors.InvalidInput: "INVALID_INPUT",
    errors.NotFound: "NOT_FOUND",
    errors.AlreadyExists: "ALREADY_EXISTS",
    errors.Conflict: "CONFLICT",
    errors.ConcurrentUpdate: "CONCURRENT_UPDATE",
    errors.StaleVersion: "PRECONDITION_FAILED",
    errors.InvalidToken: "INVALID_TOKEN",
    errors.Unauthenticated: "UNAUTHENTICATED",
    errors.PermissionDenied: "FORBIDDEN",
    errors.Throttled: "TOO_MANY_REQUESTS",
    errors.Busy: "BUSY",
}
REQUEST_ERROR = "GRAPHQL_VALIDATION_FAILED"
BAD_REQUEST = "BAD_REQUEST"  # e.g. an ifMatch that is not a list of entity-tags
UNAVAILABLE = "SERVICE_UNAVAILABLE"
INTERNAL = "INTERNAL_SERVER_ERROR"


class InvalidArguments(Exception):
    """Arguments refused by the REST schemas' field rules: marshmallow's messages per field."""

    def __init__(self, messages: dict[str, Any]) -> None:
        super().__init__("invalid arguments")
        self.messages = messages


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def settled(error: GraphQLError) -> GraphQLError:
    """The error as the client gets it: translated, with its code, or masked."""
    if error.extensions and "code" in error.extensions:
        return error
    original = error.original_error
    if error.path is None and (original is None or isinstance(original, GraphQLError)):
        return _with(error, error.message, {"code": REQUEST_ERROR})  # parsing, validation, variables
    catalogs = current_app.extensions["container"].catalogs()
    locale = current_locale()
    if isinstance(original, errors.DomainError):
        kind = next(kind for kind in CODE_OF if isinstance(original, kind))
        extensions: dict[str, Any] = {"code": CODE_OF[kind], "status": problems.STATUS_OF[kind]}
        if isinstance(original, errors.InvalidInput):
            extensions["errors"] = _fields(original.errors, catalogs, locale)
        if isinstance(original, errors.Throttled | errors.Busy):
            extensions["retryAfter"] = original.retry_after
        return _with(error, catalogs.render(original.message, locale), extensions)
    if isinstance(original, InvalidArguments):
        message = catalogs.gettext(problems.DETAIL_OF[422], locale)
        fields = _fields(original.messages, catalogs, locale)
        return _with(error, message, {"code": CODE_OF[errors.InvalidInput], "status": 422, "errors": fields})
    if isinstance(original, HTTPException) and (original.code or 500) < 500:
        detail = catalogs.gettext(original.description or "", locale)
        return _with(error, detail, {"code": BAD_REQUEST, "status": original.code})
    if isinstance(original, problems.DATABASE_UNAVAILABLE) and problems.unavailable(original):
        problems.note_database_outage(original)
        message = catalogs.gettext(problems.DETAIL_OF[503], locale)
        return _with(error, message, {"code": UNAVAILABLE, "status": 503, "retryAfter": problems.RETRY_AFTER})
    path = ".".join(map(str, error.path or ()))
    log.error("operation=graphql.failed path=%s error=%r", path, error.message, exc_info=original)
    return _with(error, catalogs.gettext(problems.DETAIL_OF[500], locale), {"code": INTERNAL, "status": 500})


def _fields(messages: Any, catalogs, locale: str) -> Any:
    translated = problems.translate(messages, catalogs, locale)
    return {camel(name): value for name, value in translated.items()}


def _with(error: GraphQLError, message: str, extensions: dict[str, Any]) -> GraphQLError:
    return GraphQLError(
        message=message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions=extensions,
    )
