"""Request bodies: JSON only (415 otherwise); the size limit is Flask's MAX_CONTENT_LENGTH (413,
chunked bodies too);
and before any view parses it, a JSON body is bounded in depth and in the length of its numbers
(400): Python's parser would otherwise recurse until it fails, or spend quadratic time turning
thousands of digits into an int, and either ended as a 500."""

from __future__ import annotations

import json
import math
from typing import Any, NoReturn

from flask import Flask, current_app, request
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge, UnsupportedMediaType

from adapters.i18n import N_

WITH_BODY = ("POST", "PUT", "PATCH")
MAX_DEPTH = 32  # arrays and objects within each other; the service's own bodies need 2
MAX_NUMBER = 40  # characters of a JSON number
TOO_DEEP = N_("The JSON body nests arrays and objects deeper than 32 levels.")
TOO_LONG = N_("The JSON body has a number longer than 40 characters.")
NOT_A_NUMBER = N_("The JSON body has a value that is not a JSON number (NaN or Infinity).")


class UnreadableBody(BadRequest):
    pass


def init_app(app: Flask) -> None:
    @app.before_request
    def require_json() -> None:
        # Transfer-Encoding's codings are case-insensitive (RFC 9112 §6.1): "Chunked" is chunked too.
        has_body = (
            bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "").lower()
        )
        if request.method in WITH_BODY and has_body:
            if not request.is_json:
                raise UnsupportedMediaType()
            data = request.get_data(cache=True)
            if request.content_length is None and len(data) == current_app.config["MAX_CONTENT_LENGTH"]:
                _refuse_a_longer_stream()
            check_json(data)


def _refuse_a_longer_stream() -> None:
    """A chunked body (no Content-Length) is read up to MAX_CONTENT_LENGTH and no further
    (werkzeug's limited stream): one that reached it may go on, and must be 413, not a body cut
    short that then reads as "Invalid JSON body"."""
    if request.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge()


def check_json(data: bytes) -> None:
    """Raises UnreadableBody for JSON nested deeper than MAX_DEPTH, a number longer than
    MAX_NUMBER characters, or NaN and Infinity (not JSON); a body that is not JSON at all is
    left to the view's parser ("Invalid JSON body.")."""
    try:
        value = json.loads(data, parse_int=_integer, parse_float=_decimal, parse_constant=_constant)
    except RecursionError:
        _too_deep()
    except UnreadableBody:
        raise
    except ValueError:  # not JSON (or not UTF-8): the view's parser says so
        return
    if _depth(value) > MAX_DEPTH:
        _too_deep()


def _too_deep() -> NoReturn:
    raise UnreadableBody(TOO_DEEP)


def _integer(text: str) -> int:
    if len(text) > MAX_NUMBER:
        raise UnreadableBody(TOO_LONG)
    return int(text)


def _decimal(text: str) -> float:
    if len(text) > MAX_NUMBER:
        raise UnreadableBody(TOO_LONG)
    value = float(text)
    if math.isinf(value):  # 1e999: not a number any JSON reader agrees on
        raise UnreadableBody(NOT_A_NUMBER)
    return value


def _constant(text: str) -> NoReturn:
    raise UnreadableBody(NOT_A_NUMBER)


def _depth(value: Any) -> int:
    """How deeply arrays and objects nest in `value` (0 for a scalar), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            break
        stack.extend((child, level + 1) for child in children)
    return deepest
