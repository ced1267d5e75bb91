"""GET /api/auth/me's representation: the principal the access check found, serialised once
per principal and process. The view and the WSGI hot path (app.http.hot_path) both
send these bytes and headers. The principal's times are UTC (the session state's codec and the
database's UtcDateTime make them so): an equal principal in another offset would share a body.
"""

from __future__ import annotations

import json
from functools import lru_cache

from app.api.schemas import MeSchema
from domain.auth.queries import Principal

ME_PATH = "/api/auth/me"
# /me names a session: never stored by any cache, and per token.
ME_HEADERS = [("Cache-Control", "private, no-store"), ("Vary", "Authorization")]


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


def me_headers(body: bytes, language: str) -> list[tuple[str, str]]:
    return [
        *ME_HEADERS,
        ("Content-Language", language),
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
    ]
