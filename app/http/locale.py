"""Accept-Language negotiation; every response says its language in Content-Language."""
from __future__ import annotations

from flask import Flask, Response, g, request

from adapters.i18n import LOCALES
from domain.messages import DEFAULT_LOCALE


def current_locale() -> str:
    return g.get("locale", DEFAULT_LOCALE)


def init_app(app: Flask) -> None:
    @app.before_request
    def negotiate() -> None:
        g.locale = request.accept_languages.best_match(LOCALES, default=DEFAULT_LOCALE)

    @app.after_request
    def content_language(response: Response) -> Response:
        response.headers.setdefault("Content-Language", current_locale())
        return response
