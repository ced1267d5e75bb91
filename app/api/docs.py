"""OpenAPI fragments shared by the blueprints."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus

from flask_smorest import Blueprint

from app.http.conditional import CONDITION_PATTERN, MAX_CONDITION

_HEADER = {"schema": {"type": "string"}}
VALIDATORS = {
    "ETag": {**_HEADER, "description": "Strong validator of this representation"},
    "Cache-Control": _HEADER,
    "Vary": _HEADER,
}
LOCATION = {"Location": {**_HEADER, "description": "URL of the new user"}}
# What app.http.conditional.parse_condition reads: `*`, or up to 32 comma-separated elements,
# each an entity-tag (RFC 9110 §8.8.3) or empty, with spaces or tabs around.
CONDITION = {"type": "string", "maxLength": MAX_CONDITION, "pattern": CONDITION_PATTERN}
IF_NONE_MATCH = {
    "in": "header",
    "name": "If-None-Match",
    "required": False,
    "schema": CONDITION,
    "description": "ETags (weak comparison, lists, *): 304 when one matches; 400 when malformed",
}
IF_MATCH = {
    "in": "header",
    "name": "If-Match",
    "required": False,
    "schema": CONDITION,
    "description": "Optional. Strong ETags, or *: 412 unless the current one is among them (or, for *, "
    "unless the resource exists); 400 when malformed",
}


BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]
BEARER_SCHEME = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}


def errors(blp: Blueprint, *statuses: int) -> Callable:
    """Document the error statuses an operation can answer with (problem+json)."""

    def decorate(view: Callable) -> Callable:
        for status in statuses:
            view = blp.alt_response(status, response=HTTPStatus(status).name)(view)
        return view

    return decorate


def not_modified(blp: Blueprint) -> Callable:
    def decorate(view: Callable) -> Callable:
        view = blp.alt_response(304, description="Not Modified: If-None-Match matched", headers=VALIDATORS)(
            view
        )
        return blp.doc(parameters=[IF_NONE_MATCH])(view)

    return decorate
