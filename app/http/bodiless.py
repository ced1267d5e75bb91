"""204 No Content and 304 Not Modified have no content (RFC 9110 §15.3.5, §15.4.5): whatever
made them, they leave with no body and no Content-Type (Flask and flask-smorest give every
response one)."""

from __future__ import annotations

from flask import Flask, Response

BODILESS = (204, 304)


def strip_content(response: Response) -> Response:
    if response.status_code in BODILESS:
        response.response = []
        response.headers.pop("Content-Type", None)
        response.headers.pop("Content-Length", None)
    return response


def init_app(app: Flask) -> None:
    """Register first, so that it runs after every other after_request function."""
    app.after_request(strip_content)
