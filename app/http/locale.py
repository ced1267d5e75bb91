"""Accept-Language negotiation; every response says its language in Content-Language."""

from __future__ import annotations

from flask import Flask, Response, g, request

from adapters.i18n import LOCALES
from domain.messages import DEFAULT_LOCALE

MAX_ACCEPT_LANGUAGE = 512  # characters read; a longer header is answered in the default language


def current_locale() -> str:
    return g.get("locale", DEFAULT_LOCALE)


def negotiate_locale(accepted) -> str:
    """The first supported language in the client's order of preference, by primary subtag
    (so `vi-VN` means `vi` even when a less preferred `en` matches exactly)."""
    for value, quality in accepted:
        primary = value.split("-")[0].lower()
        if quality > 0 and primary in LOCALES:
            return primary
    return DEFAULT_LOCALE


def init_app(app: Flask) -> None:
    @app.before_request
    def negotiate() -> None:
        too_long = len(request.headers.get("Accept-Language", "")) > MAX_ACCEPT_LANGUAGE
        g.locale = DEFAULT_LOCALE if too_long else negotiate_locale(request.accept_languages)

    @app.after_request
    def content_language(response: Response) -> Response:
        response.headers.setdefault("Content-Language", current_locale())
        return response
