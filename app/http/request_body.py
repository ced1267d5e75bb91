"""Request bodies: JSON only (415 otherwise); the size limit is Flask's MAX_CONTENT_LENGTH (413)."""

from __future__ import annotations

from flask import Flask, request
from werkzeug.exceptions import UnsupportedMediaType

WITH_BODY = ("POST", "PUT", "PATCH")


def init_app(app: Flask) -> None:
    @app.before_request
    def require_json() -> None:
        has_body = bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "")
        if request.method in WITH_BODY and has_body and not request.is_json:
            raise UnsupportedMediaType()
