"""The application factory."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from flask import Flask
from sqlalchemy.engine import make_url
from werkzeug.middleware.proxy_fix import ProxyFix

from app import VERSION, config, instance
from app.api import auth, health, passwords, premium, schemas, subscriptions, users
from app.api.docs import BEARER_SCHEME
from app.containers import Container
from app.deferred import DeferredCommands
from app.graphql import view as graphql_view
from app.http import (
    bodiless,
    correlation,
    docs_ui,
    exposure,
    locale,
    metrics,
    payments,
    problems,
    request_body,
)
from app.http.api import ProblemApi
from app.http.conditional import CACHE_POLICIES
from app.http.hot_path import HotPath

log = logging.getLogger("user_service.start")


def create_app(overrides: Mapping[str, str] | None = None) -> Flask:
    """Build the app from the environment; `overrides` are environment variables that take
    precedence (tests use them instead of touching os.environ)."""
    settings = config.load({**os.environ, **(overrides or {})})
    if settings["auth"]["secret"] is None:  # outside production: one key for the whole host
        settings["auth"]["secret"] = instance.shared_secret(settings["instance_path"])
    instance.prepare_database(settings)
    settings["cache"]["owner"] = instance.database_identity(settings)
    log.info(
        "operation=start instance=%s database=%s cache=%s",
        settings.get("instance_path"),
        make_url(settings["database_url"]).render_as_string(hide_password=True)
        if settings["storage"] == "sql"
        else "memory",
        settings["cache"].get("path") or settings["cache"]["backend"],
    )
    container = Container()
    container.config.from_dict(settings)
    if settings["cache"]["backend"] == "local":
        instance.open_local_store(container.caching.local_store(), settings)

    app = Flask("user_service")
    # werkzeug answers `//` in a path with a 308 to the merged one, built from the Host header:
    # a client-chosen host in Location. Such paths are 404s here instead.
    app.url_map.merge_slashes = False
    app.config.update(
        MAX_CONTENT_LENGTH=settings["max_content_length"],
        API_TITLE="User service",
        API_VERSION=VERSION,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api" if settings["api_docs"] else None,  # the document and the page
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        CACHE_POLICY=CACHE_POLICIES[settings["http_cache_policy"]],
        REGISTRATION_ANSWER=settings["registration_answer"],
    )
    app.extensions["container"] = container
    app.extensions["deferred"] = DeferredCommands(container.bus().handle)
    bodiless.init_app(app)  # first: it runs after every other after_request function
    exposure.init_app(app, settings["public_base_url"])
    correlation.init_app(app)  # X-Request-ID: before the hooks that may log or publish
    docs_ui.init_app(app)  # the docs page's files, served here (no CDN)
    locale.init_app(app)
    request_body.init_app(app)
    problems.init_app(app)

    api = ProblemApi(app)
    api.spec.components.security_scheme("bearerAuth", BEARER_SCHEME)
    api.spec.components.security_scheme("paymentSignature", payments.SECURITY_SCHEME)
    api.register_blueprint(auth.blp)
    api.register_blueprint(users.blp)
    api.register_blueprint(passwords.blp)
    api.register_blueprint(subscriptions.blp)
    api.register_blueprint(premium.blp)
    schemas.complete(api.spec, settings["subscriptions"]["plans"])
    app.register_blueprint(health.blp)
    graphql_view.init_app(app, settings["graphql"])
    if settings["metrics_token"] is not None or settings["env"] != "production":
        metrics.init_app(app, settings["metrics_token"])
    # Middleware wraps app.wsgi_app, as Flask documents; its types declare it a method, hence the ignores.
    app.wsgi_app = HotPath(  # type: ignore[method-assign]
        app.wsgi_app,
        container.user_entries(),
        container.bus().handle,
        app.config["CACHE_POLICY"].user,
        container.caching.read_ahead(),
        container.storage.shared_reads(),
    )
    if settings["proxy_hops"]:  # the client address (throttling, activity) from X-Forwarded-For
        hops = settings["proxy_hops"]  # and whether it came over HTTPS, from X-Forwarded-Proto
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    return app
