"""OpenAPI fragments shared by the blueprints."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus

from flask_smorest import Blueprint

_HEADER = {"schema": {"type": "string"}}
VALIDATORS = {
    "ETag": {**_HEADER, "description": "Strong validator of this representation"},
    "Cache-Control": _HEADER,
    "Vary": _HEADER,
}
LOCATION = {"Location": {**_HEADER, "description": "URL of the new user"}}
IF_NONE_MATCH = {
    "in": "header",
    "name": "If-None-Match",
    "required": False,
    "schema": {"type": "string", "maxLength": 2048},
    "description": "ETags (weak comparison, lists, *): 304 when one matches; 400 when malformed",
}
IF_MATCH = {
    "in": "header",
    "name": "If-Match",
    "required": False,
    "schema": {"type": "string", "maxLength": 2048},
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
