"""The peer baselines for bench/http_read.py: two tiny Flask apps that answer
`GET /api/users/<id>` with the service's user representation `{id, email, initials, confirmed,
roles}`, read from the service's own migrated database, with the same headers as bare_app
(ETag, Cache-Control, Vary, Content-Language). They are what a plain Flask app would do for
the same read, so the service's cost can be judged against them, not only against a constant.

    sqla_app      Flask + one SQLAlchemy primary-key read: one SELECT per request through a
                  pooled engine (SQLAlchemy Core), json.dumps of the row
    memoize_app   Flask-Caching memoize (what a Flask user would reach for): the same read
                  wrapped in @cache.memoize(timeout=600) on Flask-Caching's RedisCache, no auth
    update_app    PATCH /api/users/<id> with {"initials": …}: one SQLAlchemy UPDATE of the row
                  (initials, version + 1) RETURNING the representation (bench/http_write.py)

    PEER_DATABASE_URL=… gunicorn -w 2 -k sync --chdir bench peer_apps:sqla_app
    PEER_DATABASE_URL=… PEER_REDIS_URL=redis://… PEER_CACHE_PREFIX=… \\
        gunicorn -w 2 -k sync --chdir bench peer_apps:memoize_app

PEER_DATABASE_URL is required; memoize_app also needs PEER_REDIS_URL and PEER_CACHE_PREFIX
(its keys are the prefix's). Flask-Caching comes with the `test` extra.
`/health/live` exists only so the harness can wait for these servers as it does for the service.
"""

from __future__ import annotations

import json
import os
from typing import Any
from uuid import UUID

import bare_app  # bench/, gunicorn's working directory, is on sys.path
from flask import Flask, Response, abort, request
from flask_caching import Cache
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    bindparam,
    create_engine,
    select,
    update,
)

# The columns of adapters/sqlalchemy/tables.py's `users` that the representation needs, declared
# rather than reflected: reflecting would cost each worker queries at import. `roles` is a JSON
# list (a text column on SQLite), which the JSON type decodes.
users = Table(
    "users",
    MetaData(),
    Column("id", Uuid, primary_key=True),
    Column("email", String(255)),
    Column("initials", String(255)),
    Column("confirmed", Boolean),
    Column("roles", JSON),
    Column("version", Integer),
)
USER_BY_ID = select(users.c.id, users.c.email, users.c.initials, users.c.confirmed, users.c.roles).where(
    users.c.id == bindparam("id")
)
# Once per worker: gunicorn imports the app after forking (no --preload), so no worker shares a
# pooled connection with another.
engine = create_engine(os.environ["PEER_DATABASE_URL"])
# bare_app's headers but the ETag, which is the user's own.
HEADERS = tuple((name, value) for name, value in bare_app.HEADERS if name != "ETag")


def user_by_id(user_id: UUID) -> dict[str, Any] | None:
    with engine.connect() as connection:
        row = connection.execute(USER_BY_ID, {"id": user_id}).one_or_none()
    if row is None:
        return None
    return {
        "id": str(row.id),
        "email": row.email,
        "initials": row.initials,
        "confirmed": row.confirmed,
        "roles": row.roles,
    }


def represent(user_id: UUID, user: dict[str, Any] | None) -> Response:
    if user is None:
        abort(404)
    # The service's validator for the seeded user (version 1), as bare_app's: headers as long.
    etag = ("ETag", f'"r1-{user_id.hex}-1"')
    return Response(json.dumps(user, ensure_ascii=False), headers=(*HEADERS, etag))


def live() -> Response:
    return Response(b'{"status": "ok"}', headers=(("Content-Type", "application/json"),))


sqla_app = Flask("sqla_app")
sqla_app.get("/health/live")(live)


@sqla_app.get("/api/users/<uuid:user_id>")
def sqla_user(user_id: UUID) -> Response:
    return represent(user_id, user_by_id(user_id))


memoize_app = Flask("memoize_app")
memoize_app.get("/health/live")(live)
# .get: importing this module for sqla_app needs no Redis settings.
cache = Cache(
    memoize_app,
    config={
        "CACHE_TYPE": "RedisCache",
        "CACHE_REDIS_URL": os.environ.get("PEER_REDIS_URL"),
        "CACHE_KEY_PREFIX": os.environ.get("PEER_CACHE_PREFIX"),
    },
)


@cache.memoize(timeout=600)
def cached_user_by_id(user_id: UUID) -> dict[str, Any] | None:
    return user_by_id(user_id)


@memoize_app.get("/api/users/<uuid:user_id>")
def memoized_user(user_id: UUID) -> Response:
    return represent(user_id, cached_user_by_id(user_id))


update_app = Flask("update_app")
update_app.get("/health/live")(live)
UPDATE = (
    update(users)
    .where(users.c.id == bindparam("user_id"))
    .values(initials=bindparam("initials"), version=users.c.version + 1)
    .returning(users.c.id, users.c.email, users.c.initials, users.c.confirmed, users.c.roles)
)


@update_app.patch("/api/users/<uuid:user_id>")
def update_user(user_id: UUID) -> Response:
    initials = (request.get_json(silent=True) or {}).get("initials")
    if not isinstance(initials, str):
        abort(422)
    with engine.begin() as connection:
        row = connection.execute(UPDATE, {"user_id": user_id, "initials": initials}).one_or_none()
    user = None if row is None else {**row._asdict(), "id": str(row.id)}
    return represent(user_id, user)
