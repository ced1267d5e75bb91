"""The hot path: GET and HEAD of /api/users/{id} answered from the read cache in front of Flask.

A hit costs the access check (the JWT, remembered once verified, and one UserState read: the
token's session must be live and the caller the user or an admin) and one cache round trip, and
slices the stored bytes (see app.api.representation): no routing, no request context, no
serializer, no database. Everything else (no or a bad token, another user's account, a miss,
an entry invalidated or due for early recompute, a cache unavailable) goes on to the Flask app,
which reuses the access check's outcome; its GetUser handler reads through the same cache and
stores what this path serves next. The responses are the same either way (a test compares them).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any
from uuid import UUID

from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header, parse_etags

from adapters.caching import keys, metrics
from adapters.caching.read_through import ReadThrough, recompute_due
from adapters.caching.resilient import CacheUnavailable
from adapters.caching.users import BY_ID
from app.api.representation import representation
from app.http.auth import check
from app.http.conditional import USER_CACHE_CONTROL, VARY
from app.http.locale import negotiate_locale
from domain.errors import Unauthenticated

# The same UUID syntax as werkzeug's `uuid` converter, which routes the Flask view.
_HEX = "[A-Fa-f0-9]"
_USER_PATH = re.compile(rf"/api/users/({_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}})")

WsgiApp = Callable[[dict, Callable], Iterable[bytes]]


@lru_cache(maxsize=512)
def _content_language(header: str) -> str:
    return negotiate_locale(parse_accept_header(header, LanguageAccept))


def _matches(condition: str, etag: str) -> bool:
    """If-None-Match's weak comparison, with lists and `*`."""
    tags = parse_etags(condition)
    return tags.star_tag or tags.contains_weak(etag)


class CachedUserReads:
    def __init__(self, app: WsgiApp, reads: ReadThrough, authenticate: Callable[[Any], Any]) -> None:
        self._app = app
        self._reads = reads
        self._authenticate = authenticate
        self._hits = metrics.HITS.labels(BY_ID.name)

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        if method != "GET" and method != "HEAD":
            return self._app(environ, start_response)
        match = _USER_PATH.fullmatch(environ.get("PATH_INFO", ""))
        if match is None:
            return self._app(environ, start_response)
        user_id = UUID(match[1])
        try:  # the same check as the Flask view's, which reuses its outcome
            allowed = check(environ, self._authenticate).may_access(user_id)
        except Unauthenticated:
            allowed = False
        if not allowed:  # the Flask view answers 401 or 403
            return self._app(environ, start_response)
        key = keys.user(user_id)
        try:
            entry = self._reads.cache.get(key)
        except CacheUnavailable:
            entry = None
        if entry is None or not entry.value:
            return self._app(environ, start_response)
        if self._reads.due(entry, BY_ID):
            token = recompute_due.set(key)  # the Flask path recomputes it, without rolling again
            try:
                return self._app(environ, start_response)
            finally:
                recompute_due.reset(token)
        if (stored := representation(entry.value)) is None:  # another version's entry
            return self._app(environ, start_response)
        self._hits.inc()
        etag, body = stored
        quoted = f'"{etag}"'
        headers = [("ETag", quoted), ("Cache-Control", USER_CACHE_CONTROL), ("Vary", VARY)]
        condition = environ.get("HTTP_IF_NONE_MATCH")
        if condition is not None and (condition == quoted or _matches(condition, etag)):
            start_response("304 NOT MODIFIED", headers)  # as werkzeug: no content headers
            return []
        headers += [
            ("Content-Language", _content_language(environ.get("HTTP_ACCEPT_LANGUAGE", ""))),
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
        ]
        start_response("200 OK", headers)
        return [] if method == "HEAD" else [body]
