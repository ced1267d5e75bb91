"""The user representation {id, email, initials, confirmed, roles}: its cached form, and the one
read path that answers with it, called by the WSGI hot path in front of Flask and by the views.

A cached user starts with its ready HTTP representation and ETag, then the record the
repository rebuilds the aggregate from:

    format | >B ETag length | >I body length | ETag (ASCII) | body (JSON, UTF-8) | record (JSON)

so a hit, or a 304, is answered by slicing bytes: no JSON parsing, no schema. The format names
the representation and this layout: an entry written by another version of the service (a
deploy under way) is not served, but replaced.

The hot path (`CachedUserReads`) answers GET and HEAD of /api/auth/me (the principal the access
check found, serialised once per principal and process: `me_body`) and of /api/users/{id} for
the user or an admin: the access check (the JWT, remembered once verified, and one UserState
read) and one read through the cache, which on a miss or an entry due for early recompute loads
the user itself (see adapters.caching.users.UserEntries). No routing, no request context, no
serializer. Everything else (no or a bad token, another user's account, a user not found, an
entry in another format, a failure of any kind) goes on to the Flask app, whose problem
responses answer it; the view reuses the access check's outcome. Both build the response with `answer`.
"""

from __future__ import annotations

import json
import logging
import re
import struct
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any
from uuid import UUID

from flask import Response, request
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header
from werkzeug.routing import UUIDConverter

from adapters.caching.users import RecordCodec, UserEntries
from adapters.events import correlation as events_correlation
from app.api.schemas import MeSchema
from app.http import correlation
from app.http.auth import check
from app.http.conditional import REPRESENTATION, VARY, MalformedCondition, cache_policy, etag_of, none_match
from app.http.exposure import security_headers
from app.http.locale import MAX_ACCEPT_LANGUAGE, current_locale, negotiate_locale
from domain.auth.queries import Principal
from domain.errors import Unauthenticated
from domain.users.model import User

log = logging.getLogger("user_service.http")

# Bump the number when the layout or the record changes; REPRESENTATION covers the body.
FORMAT = f"{REPRESENTATION}/1:".encode()
_HEAD = struct.Struct(">BI")
_START = len(FORMAT)
_RECORD = RecordCodec()

# The Flask view's route (the users blueprint's prefix, werkzeug's `uuid` converter).
_USER_PATH = re.compile(rf"/api/users/({UUIDConverter.regex})")
ME_PATH = "/api/auth/me"
# /me names a session: never stored by any cache, and per token.
ME_HEADERS = [("Cache-Control", "private, no-store"), ("Vary", "Authorization")]
_STATUS_LINES = {200: "200 OK", 304: "304 NOT MODIFIED"}

Headers = list[tuple[str, str]]
_PLAIN, _SECURE = security_headers(https=False), security_headers(https=True)
WsgiApp = Callable[[dict, Callable], Iterable[bytes]]


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


@lru_cache(maxsize=4096)
def me_body(principal: Principal) -> bytes:
    """GET /api/auth/me's body: the principal is a value (a new session state makes a new one),
    so each is serialised once per process, on the hot path and in the view alike."""
    payload = {
        "id": principal.user_id,
        "email": principal.email,
        "roles": sorted(principal.roles),
        "session_id": principal.session_id,
        "last_login_at": principal.last_login_at,
        "subscription": principal.subscription,
    }
    return json.dumps(MeSchema().dump(payload), ensure_ascii=False).encode()


def me_headers(body: bytes, language: str) -> Headers:
    return [
        *ME_HEADERS,
        ("Content-Language", language),
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
    ]


@lru_cache(maxsize=512)
def _content_language(header: str) -> str:
    return negotiate_locale(parse_accept_header(header, LanguageAccept))


class CachedUserReads:
    """WSGI middleware: the hot path of GET and HEAD /api/users/{id} (see the module's text)."""

    def __init__(
        self, app: WsgiApp, entries: UserEntries, authenticate: Callable[[Any], Any], cache_control: str
    ) -> None:
        self.app = app
        self._entries = entries
        self._authenticate = authenticate
        self._cache_control = cache_control

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        if method != "GET" and method != "HEAD":
            return self.app(environ, start_response)
        path = environ.get("PATH_INFO", "")
        if path == ME_PATH:
            return self._me(environ, start_response, method)
        match = _USER_PATH.fullmatch(path)
        if match is None:
            return self.app(environ, start_response)
        # The request's id, echoed here or, when the request goes on, by the Flask app.
        request_id = environ[correlation.ENVIRON_KEY] = correlation.correlation_id_from(
            environ.get("HTTP_X_REQUEST_ID"), environ.get("HTTP_TRACEPARENT")
        )
        try:
            with events_correlation.use(request_id):  # what a miss logs or loads carries it
                stored = self._read(environ, UUID(match[1]))
        except Exception:  # an outage, or anything else: the Flask app answers with a problem
            log.debug("operation=hot_path.declined path=%s", environ.get("PATH_INFO"), exc_info=True)
            stored = None
        if stored is None:
            return self.app(environ, start_response)
        etag, body = stored
        condition = environ.get("HTTP_IF_NONE_MATCH")
        try:
            status, headers, body = answer(
                method, etag, body, condition, _language(environ), self._cache_control
            )
        except MalformedCondition:
            return self.app(environ, start_response)  # the view answers 400 with a problem
        return _send(environ, start_response, method, status, headers, body, request_id)

    def _me(self, environ: dict[str, Any], start_response: Callable, method: str) -> Iterable[bytes]:
        request_id = environ[correlation.ENVIRON_KEY] = correlation.correlation_id_from(
            environ.get("HTTP_X_REQUEST_ID"), environ.get("HTTP_TRACEPARENT")
        )
        try:
            with events_correlation.use(request_id):
                body = me_body(check(environ, self._authenticate))
        except Exception:  # no or a bad token (401), an outage: the view answers with a problem
            log.debug("operation=hot_path.declined path=%s", ME_PATH, exc_info=True)
            return self.app(environ, start_response)
        headers = me_headers(body, _language(environ))
        return _send(environ, start_response, method, 200, headers, body, request_id)

    def _read(self, environ: dict[str, Any], user_id: UUID) -> tuple[str, bytes] | None:
        try:  # the same check as the Flask view's, which reuses its outcome
            if not check(environ, self._authenticate).may_access(user_id):
                return None  # the view answers 403
        except Unauthenticated:
            return None  # the view answers 401
        value = self._entries.read(user_id)
        return None if value is None else representation(value)  # None: the view answers 404


def _language(environ: dict[str, Any]) -> str:
    accepted = environ.get("HTTP_ACCEPT_LANGUAGE", "")
    return _content_language(accepted if len(accepted) <= MAX_ACCEPT_LANGUAGE else "")


def _send(
    environ: dict[str, Any],
    start_response: Callable,
    method: str,
    status: int,
    headers: Headers,
    body: bytes,
    request_id: str,
) -> Iterable[bytes]:
    https = environ.get("wsgi.url_scheme") == "https"
    start_response(
        _STATUS_LINES[status], [*headers, (correlation.HEADER, request_id), *(_SECURE if https else _PLAIN)]
    )
    return [] if method == "HEAD" or status == 304 else [body]
