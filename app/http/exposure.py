"""What every response says about itself, where Location points, and what production shows.

* Every response (the hot path's too): `X-Content-Type-Options: nosniff` and
  `Referrer-Policy: no-referrer`; `Strict-Transport-Security` when the request came over HTTPS
  (directly, or per X-Forwarded-Proto from a trusted proxy: PROXY_HOPS).
* The docs page: a Content-Security-Policy that lets it load only the service's own files, its
  one inline script allowed by its hash.
* Location: a path (RFC 9110 §10.2.2 allows a relative reference), or PUBLIC_BASE_URL followed
  by the path; never the request's Host header, which a client chooses.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from flask import Flask, Response, current_app, request, url_for

SECURITY_HEADERS = (("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"))
HSTS = ("Strict-Transport-Security", "max-age=31536000")
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def security_headers(https: bool) -> list[tuple[str, str]]:
    return [*SECURITY_HEADERS, HSTS] if https else list(SECURITY_HEADERS)


def location(endpoint: str, **values: Any) -> str:
    path = url_for(endpoint, **values)
    return f"{current_app.config['PUBLIC_BASE_URL']}{path}"


def docs_policy(page: bytes) -> str:
    """The docs page's policy: its own files, and its inline scripts by their hashes."""
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(page)
    )
    return (
        "default-src 'none'; "
        f"script-src 'self' {hashes}; "
        "style-src 'self' 'unsafe-inline'; "  # Swagger UI sets style attributes as it renders
        "img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def init_app(app: Flask, public_base_url: str) -> None:
    app.config["PUBLIC_BASE_URL"] = public_base_url
    docs_page = _docs_page(app)

    @app.after_request
    def headers(response: Response) -> Response:
        for name, value in security_headers(request.is_secure):
            response.headers.setdefault(name, value)
        if docs_page is not None and request.path == docs_page and response.status_code == 200:
            response.headers["Content-Security-Policy"] = docs_policy(response.get_data())
        return response


def _docs_page(app: Flask) -> str | None:
    prefix, page = app.config.get("OPENAPI_URL_PREFIX"), app.config.get("OPENAPI_SWAGGER_UI_PATH")
    if prefix is None or page is None:
        return None
    return "/" + "/".join(part.strip("/") for part in (prefix, page) if part.strip("/"))
