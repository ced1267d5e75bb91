"""Swagger UI's files for the docs page (/api/docs), served by the service itself, so that the page
works where no CDN can be reached and always runs the Swagger UI that was installed with it.

The files are Swagger UI's dist folder as the flask-swagger-ui package ships it (only the files; its
blueprint is not used: flask-smorest renders the page). The package's version is part of the path,
so a browser may keep the files for a year, and an upgrade changes every URL the page refers to.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import flask_swagger_ui
from flask import Flask, Response, send_from_directory

DISTRIBUTION = "flask-swagger-ui"
FOLDER = Path(flask_swagger_ui.__file__).with_name("dist")
MAX_AGE = 365 * 24 * 3600  # seconds: the URL changes with the package version


def assets_url(app: Flask) -> str | None:
    """Where the files are served: `<docs page>/assets/<version>/`, e.g. /api/docs/assets/5.34.0/;
    None when flask-smorest serves no Swagger UI page."""
    prefix = app.config.get("OPENAPI_URL_PREFIX")
    page = app.config.get("OPENAPI_SWAGGER_UI_PATH")
    if prefix is None or page is None:
        return None
    parts = [part.strip("/") for part in (prefix, page, "assets", metadata.version(DISTRIBUTION))]
    return "/" + "/".join(part for part in parts if part) + "/"


def init_app(app: Flask) -> None:
    """Serve the files and point OPENAPI_SWAGGER_UI_URL at them. Call it after the OPENAPI_* settings
    and before flask-smorest's Api is made: the Api reads OPENAPI_SWAGGER_UI_URL when it registers
    the docs page."""
    url = assets_url(app)
    if url is None:
        return

    def swagger_ui_asset(filename: str) -> Response:
        response = send_from_directory(FOLDER, filename, max_age=MAX_AGE)
        response.cache_control.public = True
        response.cache_control.immutable = True
        return response

    app.add_url_rule(f"{url}<path:filename>", "swagger_ui_asset", swagger_ui_asset, methods=["GET"])
    app.config["OPENAPI_SWAGGER_UI_URL"] = url
