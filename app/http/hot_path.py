"""WSGI middleware in front of Flask: the hot path of the two reads most requests are.

The hot path (`HotPath`) answers GET and HEAD of /api/auth/me (the principal the access check
found, serialised once per principal and process: `me_body`) and of /api/users/{id} for the user
or an admin: the access check (the JWT, remembered once verified, and one UserState read) and one
read through the cache, which on a miss or an entry due for early recompute loads the user itself
(see adapters.caching.users.UserEntries; with the cache switched off, every read loads). On Redis
the state read reads the entry along, so a hit is one round trip (adapters.caching.read_ahead).
No routing, no request context, no serializer. Everything else (no or a bad token, another
user's account, a user not found, an entry in another format, a failure of any kind) goes on to
the Flask app, whose problem responses answer it; the view reuses the access check's outcome (an
outage included). A user is answered with app.http.user_representation's `answer`, /me with
app.http.me's headers, as their views do.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import lru_cache
from typing import Any
from uuid import UUID

from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header
from werkzeug.routing import UUIDConverter

from adapters.caching.read_ahead import ReadAhead
from adapters.caching.users import UserEntries
from adapters.events import correlation as events_correlation
from app.http import correlation
from app.http.auth import check
from app.http.conditional import MalformedCondition
from app.http.exposure import security_headers
from app.http.locale import MAX_ACCEPT_LANGUAGE, negotiate_locale
from app.http.me import ME_PATH, me_body, me_headers
from app.http.user_representation import Headers, answer, representation
from domain.errors import Unauthenticated

log = logging.getLogger("user_service.http")

# The Flask view's route (the users blueprint's prefix, werkzeug's `uuid` converter).
_USER_PATH = re.compile(rf"/api/users/({UUIDConverter.regex})")
_STATUS_LINES = {200: "200 OK", 304: "304 NOT MODIFIED"}
_PLAIN, _SECURE = security_headers(https=False), security_headers(https=True)
WsgiApp = Callable[[dict, Callable], Iterable[bytes]]


@lru_cache(maxsize=512)
def _content_language(header: str) -> str:
    return negotiate_locale(parse_accept_header(header, LanguageAccept))


class HotPath:
    """WSGI middleware: the hot path of GET and HEAD /api/users/{id} and /api/auth/me (see the
    module's text)."""

    def __init__(
        self,
        app: WsgiApp,
        entries: UserEntries,
        authenticate: Callable[[Any], Any],
        cache_control: str,
        ahead: ReadAhead,
        shared_reads: Callable[[], AbstractContextManager[None]],
    ) -> None:
        self.app = app
        self._entries = entries
        self._ahead = ahead
        self._shared_reads = shared_reads
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
        request_id = _request_id(environ)
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
        request_id = _request_id(environ)
        try:
            with events_correlation.use(request_id):
                body = me_body(check(environ, self._authenticate))
        except Exception:  # no or a bad token (401), an outage: the view answers with a problem
            log.debug("operation=hot_path.declined path=%s", ME_PATH, exc_info=True)
            return self.app(environ, start_response)
        headers = me_headers(body, _language(environ))
        return _send(environ, start_response, method, 200, headers, body, request_id)

    def _read(self, environ: dict[str, Any], user_id: UUID) -> tuple[str, bytes] | None:
        # The session check reads the entry along where its store can (one round trip on Redis);
        # where both go to the database, they share one pooled connection.
        with user_read(self._ahead, self._entries.key(user_id), self._shared_reads):
            try:  # the same check as the Flask view's, which reuses its outcome
                if not check(environ, self._authenticate).may_access(user_id):
                    return None  # the view answers 403
            except Unauthenticated:
                return None  # the view answers 401
            value = self._entries.read(user_id)
        return None if value is None else representation(value)  # None: the view answers 404


@contextmanager
def user_read(
    ahead: ReadAhead, key: str, shared_reads: Callable[[], AbstractContextManager[None]]
) -> Iterator[None]:
    """A request's session check and then its read of one user's cache entry `key`, in one go:
    on Redis the check reads the entry along (one round trip), on the database the two share
    one pooled connection. The hot path reads so, and GraphQL's user(id)."""
    ahead.want(key)
    try:
        with shared_reads():
            yield
    finally:
        ahead.clear()


def _request_id(environ: dict[str, Any]) -> str:
    """The request's id, echoed here or, when the request goes on, by the Flask app."""
    request_id = environ[correlation.ENVIRON_KEY] = correlation.correlation_id_from(
        environ.get("HTTP_X_REQUEST_ID"), environ.get("HTTP_TRACEPARENT")
    )
    return request_id


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
