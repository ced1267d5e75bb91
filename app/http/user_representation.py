"""The user representation {id, email, initials, confirmed, roles}: its cached form, and the one
read path that answers with it, called by the WSGI hot path in front of Flask and by the views.

A cached user starts with its ready HTTP representation and ETag, then the record the
repository rebuilds the aggregate from:

    format | >B ETag length | >I body length | ETag (ASCII) | body (JSON, UTF-8) | record (JSON)

so a hit, or a 304, is answered by slicing bytes: no JSON parsing, no schema. The format names
the representation and this layout: an entry written by another version of the service (a
deploy under way) is not served, but replaced.

The WSGI hot path (app.http.hot_path) answers hits with `representation` and `answer`; the
views answer with `user_response`.
"""

from __future__ import annotations

import json
import struct

from flask import Response, request

from adapters.caching.users import RecordCodec
from app.http.conditional import REPRESENTATION, VARY, cache_policy, etag_of, none_match
from app.http.locale import current_locale
from domain.users.model import User

# Bump the number when the layout or the record changes; REPRESENTATION covers the body.
FORMAT = f"{REPRESENTATION}/1:".encode()
_HEAD = struct.Struct(">BI")
_START = len(FORMAT)
_RECORD = RecordCodec()

Headers = list[tuple[str, str]]


def user_payload(user: User) -> dict:
    return {
        "id": str(user.id),
        "email": user.email,
        "initials": user.initials,
        "confirmed": user.confirmed,
        "roles": sorted(user.roles),
    }


def user_body(user: User) -> bytes:
    return json.dumps(user_payload(user), ensure_ascii=False).encode()


class RepresentationCodec:
    """The UserCodec the app gives the read cache: the representation, then the record."""

    def encode(self, user: User) -> bytes:
        etag = etag_of(user.id, user.version).encode()
        body = user_body(user)
        return FORMAT + _HEAD.pack(len(etag), len(body)) + etag + body + _RECORD.encode(user)

    def decode(self, value: bytes) -> User:
        if not value.startswith(FORMAT):
            raise ValueError("a cached user in another format")
        etag_length, body_length = _HEAD.unpack_from(value, _START)
        return _RECORD.decode(value[_START + _HEAD.size + etag_length + body_length :])


def representation(value: bytes) -> tuple[str, bytes] | None:
    """The ETag and body stored in a cached user; None for an entry in another format."""
    if not value.startswith(FORMAT):
        return None
    etag_length, body_length = _HEAD.unpack_from(value, _START)
    start = _START + _HEAD.size
    body_start = start + etag_length
    return value[start:body_start].decode("ascii"), value[body_start : body_start + body_length]


def answer(
    method: str,
    etag: str,
    body: bytes,
    condition: str | None,
    language: str,
    cache_control: str,
    status: int = 200,
) -> tuple[int, Headers, bytes]:
    """The status, headers and body answering with a user: a 304 with just its validators when
    a GET or HEAD's If-None-Match matches, the representation otherwise (the server drops the
    body of a HEAD)."""
    headers = [("ETag", f'"{etag}"'), ("Cache-Control", cache_control), ("Vary", VARY)]
    if method in ("GET", "HEAD") and none_match(condition, etag):
        return 304, headers, b""  # as werkzeug: no content headers
    headers += [
        ("Content-Language", language),
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
    ]
    return status, headers, body


def user_response(user: User, status: int = 200, **headers: str) -> Response:
    """A view's response with a user (GET, and the writes that answer with the user)."""
    code, fields, body = answer(
        request.method,
        etag_of(user.id, user.version),
        user_body(user),
        request.headers.get("If-None-Match"),
        current_locale(),
        cache_policy().user,
        status,
    )
    return Response(body, status=code, headers=[*fields, *headers.items()])
