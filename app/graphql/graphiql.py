"""The GraphiQL page for the GraphQL endpoint, with every file it loads served by the service itself.

Strawberry's own page loads React and GraphiQL from unpkg.com; this service must work where no CDN can
be reached, and its Content-Security-Policy allows only its own files. The files are in `ide/` (see
ide/README.md for where they come from). Their URLs carry a version, so a browser keeps them for a year.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from flask import Flask, Response, abort, send_from_directory
from markupsafe import escape

ASSETS = Path(__file__).with_name("ide")
GRAPHIQL = "3.8.3"  # and react, react-dom 18.2.0: ide/README.md
MAX_AGE = 365 * 24 * 3600  # seconds: the URL changes with the files
OWN = ("boot.js", "boot.css")  # the service's own files: their digest is part of the version
SCRIPTS = ("react.production.min.js", "react-dom.production.min.js", "graphiql.min.js", "boot.js")
STYLES = ("graphiql.min.css", "boot.css")
LICENCES = ("LICENSE.graphiql", "LICENSE.react")  # public: the bundles are copies handed out
SERVED = frozenset(SCRIPTS + STYLES + LICENCES)

CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        # GraphiQL's dialogs add a <style> element (react-remove-scroll-bar), which the bundle offers no
        # way to give a nonce, and CodeMirror's search and jump-to-line bars have style attributes.
        "style-src 'self' 'unsafe-inline'",
        # graphiql.min.css embeds its fonts and a few icons as data: URLs.
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)


@cache
def version() -> str:
    """The path segment naming this set of files, e.g. graphiql-3.8.3-1a2b3c4d: the vendored version
    and a digest of the service's own files, so that editing boot.js changes its URL too."""
    digest = hashlib.sha256(b"".join((ASSETS / name).read_bytes() for name in OWN)).hexdigest()
    return f"graphiql-{GRAPHIQL}-{digest[:8]}"


def assets_url(endpoint: str = "/api/graphql") -> str:
    return f"{endpoint.rstrip('/')}/ide/{version()}/"


def init_app(app: Flask, endpoint: str = "/api/graphql") -> None:
    """Serve the page's files at <endpoint>/ide/<version>/<filename>; page() refers to them."""

    def graphiql_asset(filename: str) -> Response:
        if filename not in SERVED:
            abort(404)
        mimetype = "text/plain" if filename in LICENCES else None
        response = send_from_directory(ASSETS, filename, max_age=MAX_AGE, mimetype=mimetype)
        response.cache_control.public = True
        response.cache_control.immutable = True
        return response

    rule = f"{assets_url(endpoint)}<string:filename>"
    app.add_url_rule(rule, "graphiql_asset", graphiql_asset, methods=["GET", "HEAD"])


def page(endpoint: str = "/api/graphql") -> Response:
    """The GraphiQL page, for a browser's GET of the endpoint."""
    url = escape(assets_url(endpoint))
    styles = "".join(f'\n<link rel="stylesheet" href="{url}{name}">' for name in STYLES)
    scripts = "".join(f'\n<script src="{url}{name}"></script>' for name in SCRIPTS)
    html = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>GraphiQL</title>{styles}
</head>
<body>
<div id="graphiql" data-endpoint="{escape(endpoint)}">Loading…</div>{scripts}
</body>
</html>
"""
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = CSP
    response.cache_control.no_cache = True
    return response
