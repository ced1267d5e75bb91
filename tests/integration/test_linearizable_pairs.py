# Over 200 lines: four pairs, each with its steps, its observation and its interleavings, read as one table.
"""Linearizability of the pairs of steps the invariants are about (DESIGN §10: I1 to I4, I6):
login vs roles change, login vs subscription activation, PATCH vs a GET that fills the read
cache, logout vs refresh of the same session.

Two workers are two apps built from one configuration on a shared store, as gunicorn's workers
are: a SQLite file and the host's local store, or a PostgreSQL schema and Redis. Step A runs on
the first, step B on the second. The outcomes allowed are those the two serial orders give, found
by running A;B and B;A (not predicted, so they cannot drift from the service); then A and B run
at once, one held at a chosen point while the other runs to its end (and the reverse), and in a
free race, and each outcome must be one of them: each step's answer, the reads of the API on
both workers, the session-state entry and the read cache entry against the database.

A fresh account (and admin) is a fresh starting state: nothing a pair does or observes reads
another account's data, so the serial runs and the concurrent one share the workers.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import pytest
from faker import Faker
from flask import Flask

from adapters.caching import keys
from app.factory import create_app
from app.http.user_representation import RepresentationCodec
from application.session_state.states import load_state
from domain.session_state.model import Group, Roles, Sessions, SubscriptionSummary, UserState
from tests.api.conftest import make_admin
from tests.integration.backends import migrated, postgres_url
from tests.settings import TEST_ENV
from tests.support.accounts import Account, register
from tests.support.interleavings import Point, assert_one_of, held_after_reading, held_at, interleaved
from tests.support.races import race
from tests.support.redis import REDIS_URL, delete_prefixed, redis_client

RACES = 3  # free races per pair and backend
ME = "/api/auth/me"


@dataclass(frozen=True)
class Workers:
    one: Flask  # runs step A
    two: Flask  # runs step B


@pytest.fixture(params=["local+sqlite", pytest.param("redis+postgres", marks=pytest.mark.postgres)])
def workers(request: pytest.FixtureRequest, tmp_path) -> Iterator[Workers]:
    if request.param == "local+sqlite":  # the embedded default: one file each, for every worker
        env = {
            **TEST_ENV,
            "CACHE_URL": f"local://{tmp_path / 'cache.db'}",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'users.db'}",
        }
        yield Workers(create_app(env), create_app(env))
        return
    client, prefix = redis_client(), f"test:pairs:{secrets.token_hex(6)}:"
    url = migrated(postgres_url(request.getfixturevalue("postgres_schema")()))
    env = {**TEST_ENV, "DATABASE_URL": url, "CACHE_URL": REDIS_URL, "CACHE_PREFIX": prefix}
    apps = Workers(create_app(env), create_app(env))
    try:
        yield apps
    finally:
        for app in (apps.one, apps.two):
            container(app).storage.engine().dispose()
        delete_prefixed(client, prefix)
        client.close()


@dataclass
class Scene:
    """One starting state: an account logged in (its state entry complete), an admin, and what
    the steps answered and issued."""

    workers: Workers
    account: Account
    tokens: dict
    admin: dict[str, str]
    extra: dict[str, Any] = field(default_factory=dict)
    answers: dict[str, Any] = field(default_factory=dict)
    issued: dict[str, dict] = field(default_factory=dict)


def container(app: Flask):
    return app.extensions["container"]


def bearer(tokens: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def log_in(app: Flask, account: Account):
    return app.test_client().post(
        "/api/auth/login", json={"email": account.email, "password": account.password}
    )


def prepared(workers: Workers, faker: Faker) -> Scene:
    c = container(workers.one)
    account = register(c.bus(), c.mailer().outbox, faker)
    tokens = log_in(workers.one, account).get_json()
    admin = make_admin(workers.two, faker)
    for app, headers in ((workers.one, bearer(tokens)), (workers.two, admin)):
        # A first authenticated request fills in the entry's missing groups: the steps then
        # write only their own.
        assert app.test_client().get(ME, headers=headers).status_code == 200
    return Scene(workers, account, tokens, admin)


# -- what is observed ----------------------------------------------------------------------------


def cached_state(app: Flask, user_id: UUID) -> UserState | None:
    return container(app).caching.states().read(user_id, reader="test")


def database_state(app: Flask, user_id: UUID) -> UserState | None:
    c = container(app)
    with c.storage.read_uow() as uow:
        return load_state(uow, user_id, c.clock().now())


def state_unlike_database(scene: Scene) -> dict[str, str]:
    """The groups of the state entry whose value is not the database's (versions may differ:
    a roles change leaves the identity group at the version it had)."""
    app, user_id = scene.workers.one, scene.account.id
    cached, truth = cached_state(app, user_id), database_state(app, user_id)
    if cached is None:
        return {"entry": "missing"}
    unlike = {}
    for group in Group:
        held, source = getattr(cached, group.value), getattr(truth, group.value)
        if held is None:
            unlike[group.value] = "missing"
        elif held.value != source.value:
            unlike[group.value] = f"cached {shown(held.value)}, database {shown(source.value)}"
    return unlike


def shown(value: Any) -> Any:
    """A group's value, briefly."""
    if isinstance(value, Roles):
        return sorted(value.roles)
    if isinstance(value, Sessions):
        return f"{len(value.live)} live session(s)"
    if isinstance(value, SubscriptionSummary):
        return [value.plan, value.status]
    return value


def me(app: Flask, tokens: dict | None, read: Callable[[dict], Any]) -> Any:
    """What GET /api/auth/me says with these tokens (`read` from its body), or its status."""
    if tokens is None:
        return "no token issued"
    response = app.test_client().get(ME, headers=bearer(tokens))
    return read(response.get_json()) if response.status_code == 200 else response.status_code


def outcome(pair: Pair, scene: Scene) -> dict[str, Any]:
    """The stores are observed first: a read through the API may fill them in."""
    unlike = state_unlike_database(scene)
    return {
        f"{pair.a} answered": scene.answers.get(pair.a),
        f"{pair.b} answered": scene.answers.get(pair.b),
        "state entry unlike the database": unlike,
        **pair.observe(scene),
    }


# -- login vs roles change (I2, I3) ----------------------------------------------------------------


def login_step(scene: Scene) -> int:
    response = log_in(scene.workers.one, scene.account)
    if response.status_code == 200:
        scene.issued["login"] = response.get_json()
    return response.status_code


def change_roles(scene: Scene) -> int:
    url = f"/api/users/{scene.account.id}/roles"
    return (
        scene.workers.two.test_client()
        .put(url, json={"roles": ["user", "admin"]}, headers=scene.admin)
        .status_code
    )


def observe_roles(scene: Scene) -> dict[str, Any]:
    one, two, user_id = scene.workers.one, scene.workers.two, scene.account.id
    cached = cached_state(one, user_id)
    found = {
        "cached roles": sorted(cached.roles.value.roles) if cached and cached.roles else None,
        "database roles": sorted(database_state(one, user_id).roles.value.roles),
    }
    for name, app in (("one", one), ("two", two)):
        found[f"/me roles, new session, worker {name}"] = me(
            app, scene.issued.get("login"), lambda b: b["roles"]
        )
    read = one.test_client().get(f"/api/users/{user_id}", headers=scene.admin)
    return {**found, "roles read by an admin": read.get_json()["roles"]}


# -- login vs subscription activation (I2, I5) -------------------------------------------------------


def with_subscription(workers: Workers, faker: Faker) -> Scene:
    scene = prepared(workers, faker)
    made = workers.one.test_client().post(
        "/api/subscriptions", json={"plan": "monthly"}, headers=bearer(scene.tokens)
    )
    assert made.status_code == 201, made.get_json()
    scene.extra["subscription"] = made.get_json()["id"]
    scene.extra["reference"] = faker.unique.hexify("pay_" + "^" * 24)
    return scene


def pay(scene: Scene) -> int:
    subscription = scene.extra["subscription"]
    body = {
        "subscription_id": subscription,
        "reference": scene.extra["reference"],
        "amount": 900,
        "currency": "EUR",
    }
    url = f"/api/subscriptions/{subscription}/payments"
    return scene.workers.two.test_client().post(url, json=body, headers=scene.admin).status_code


def observe_subscription(scene: Scene) -> dict[str, Any]:
    one, two, user_id = scene.workers.one, scene.workers.two, scene.account.id
    cached, truth = cached_state(one, user_id), database_state(one, user_id)

    def summary(state: UserState | None) -> Any:
        group = state.subscription if state is not None else None
        return "missing" if group is None else group.value and [group.value.plan, group.value.status]

    found = {"cached subscription": summary(cached), "database subscription": summary(truth)}
    for name, app in (("one", one), ("two", two)):
        key = f"/me subscription, new session, worker {name}"
        found[key] = me(
            app, scene.issued.get("login"), lambda b: b["subscription"] and b["subscription"]["status"]
        )
    read = two.test_client().get(
        f"/api/subscriptions/{scene.extra['subscription']}", headers=bearer(scene.tokens)
    )
    return {**found, "subscription read by its user": read.get_json()["status"]}


# -- PATCH vs a GET that fills the read cache (I1, I6) -------------------------------------------------


def with_new_initials(workers: Workers, faker: Faker) -> Scene:
    scene = prepared(workers, faker)
    initials = scene.account.user.initials
    while initials == scene.account.user.initials:
        initials = faker.lexify("??").upper()
    scene.extra["initials"] = {scene.account.user.initials: "as before", initials: "as patched"}
    scene.extra["new"] = initials
    return scene


def named(scene: Scene, initials: str) -> str:
    return scene.extra["initials"].get(initials, f"neither: {initials!r}")


def get_user(scene: Scene) -> list:
    response = scene.workers.one.test_client().get(
        f"/api/users/{scene.account.id}", headers=bearer(scene.tokens)
    )
    return [response.status_code, named(scene, response.get_json()["initials"])]


def patch_user(scene: Scene) -> list:
    url, body = f"/api/users/{scene.account.id}", {"initials": scene.extra["new"]}
    response = scene.workers.two.test_client().patch(url, json=body, headers=bearer(scene.tokens))
    return [response.status_code, named(scene, response.get_json()["initials"])]


def observe_user(scene: Scene) -> dict[str, Any]:
    one, two, user_id = scene.workers.one, scene.workers.two, scene.account.id
    entry = container(one).caching.cache().get(keys.user(user_id))
    with container(one).storage.read_uow() as uow:
        stored = uow.users.get(user_id)
    cached = RepresentationCodec().decode(entry.value) if entry is not None else None
    # An absent entry is filled from the database by the next read: it cannot be stale.
    fresh = cached is None or (cached.initials, cached.version) == (stored.initials, stored.version)
    found = {
        "read cache entry": "absent or as the database"
        if fresh
        else f"stale: {named(scene, cached.initials)} at version {cached.version}, "
        f"the database at version {stored.version}",
        "database initials": named(scene, stored.initials),
    }
    for name, app in (("one", one), ("two", two)):
        read = app.test_client().get(f"/api/users/{user_id}", headers=bearer(scene.tokens))
        found[f"read on worker {name}"] = named(scene, read.get_json()["initials"])
    return found


# -- logout vs refresh of the same session (I4) --------------------------------------------------------


def logout(scene: Scene) -> int:
    return scene.workers.one.test_client().post("/api/auth/logout", headers=bearer(scene.tokens)).status_code


def refresh(scene: Scene) -> int:
    body = {"refresh_token": scene.tokens["refresh_token"]}
    response = scene.workers.two.test_client().post("/api/auth/refresh", json=body)
    if response.status_code == 200:
        scene.issued["refresh"] = response.get_json()
    return response.status_code


def observe_session(scene: Scene) -> dict[str, Any]:
    one, two, user_id = scene.workers.one, scene.workers.two, scene.account.id
    session = UUID(scene.tokens["session_id"])
    cached, truth = cached_state(one, user_id), database_state(one, user_id)
    found = {
        "session live in the state entry": bool(
            cached and cached.sessions and session in cached.sessions.value.live
        ),
        "session live in the database": session in truth.sessions.value.live,
    }
    for name, app in (("one", one), ("two", two)):
        found[f"/me, first access token, worker {name}"] = me(app, scene.tokens, lambda b: 200)
        found[f"/me, refreshed access token, worker {name}"] = me(
            app, scene.issued.get("refresh"), lambda b: 200
        )
    return found


# -- the pairs and their chosen interleavings -----------------------------------------------------------

PointAt = Callable[[Scene, str], AbstractContextManager[Point]]


@dataclass(frozen=True)
class Interleaving:
    id: str
    held: str  # "a" or "b": the step held at the point while the other runs to its end
    where: str
    point: PointAt


@dataclass(frozen=True)
class Pair:
    id: str
    a: str  # runs on worker one
    b: str  # runs on worker two
    prepare: Callable[[Workers, Faker], Scene]
    step_a: Callable[[Scene], Any]
    step_b: Callable[[Scene], Any]
    observe: Callable[[Scene], dict[str, Any]]
    interleavings: tuple[Interleaving, ...]

    @property
    def name(self) -> str:
        return f"{self.a} vs {self.b}"

    def describe(self, interleaving: Interleaving) -> str:
        held, other = (self.a, self.b) if interleaving.held == "a" else (self.b, self.a)
        return f"{held} held {interleaving.where} while {other} ran"


def state_write(worker: str, when: Callable[[UserState], bool]) -> PointAt:
    """Before a write of the account's session state, on `worker`, that `when` accepts."""

    def point(scene: Scene, where: str) -> AbstractContextManager[Point]:
        def chosen(state: UserState) -> bool:
            return state.user_id == scene.account.id and when(state)

        return held_at(container(getattr(scene.workers, worker)).caching.states, "write", where, when=chosen)

    return point


def user_read(worker: str) -> PointAt:
    """After the first read-only unit of work on `worker` ends (a GET's load of the user)."""
    return lambda scene, where: held_after_reading(
        container(getattr(scene.workers, worker)).storage.read_uow, where
    )


def invalidation(worker: str, *, after: bool = False) -> PointAt:
    """Before (`after`: behind) an invalidation of the read cache on `worker` (a write's event
    consumer)."""
    return lambda scene, where: held_at(
        container(getattr(scene.workers, worker)).caching.cache, "invalidate", where, after=after
    )


def sessions_written(state: UserState) -> bool:
    return state.sessions is not None


AFTER_COMMIT = "after its commit, before its state write"
PAIRS = (
    Pair(
        "login-vs-roles",
        "login",
        "roles change",
        prepared,
        login_step,
        change_roles,
        observe_roles,
        (
            Interleaving("login-held", "a", AFTER_COMMIT, state_write("one", sessions_written)),
            Interleaving(
                "consumer-held",
                "b",
                "after its commit, before its consumer's roles write",
                state_write("two", lambda state: state.roles is not None and state.sessions is None),
            ),
        ),
    ),
    Pair(
        "login-vs-activation",
        "login",
        "payment",
        with_subscription,
        login_step,
        pay,
        observe_subscription,
        (
            Interleaving("login-held", "a", AFTER_COMMIT, state_write("one", sessions_written)),
            Interleaving(
                "consumer-held",
                "b",
                "after its activation's commit, before its consumer's subscription write",
                state_write("two", lambda state: state.subscription is not None),
            ),
        ),
    ),
    Pair(
        "patch-vs-get",
        "GET",
        "PATCH",
        with_new_initials,
        get_user,
        patch_user,
        observe_user,
        (
            Interleaving(
                "get-held",
                "a",
                "after reading the user from the database, before storing it",
                user_read("one"),
            ),
            Interleaving("patch-held", "b", "after its commit, before its invalidation", invalidation("two")),
            # Only a write that invalidated before it committed leaves a window here.
            Interleaving(
                "patch-held-later",
                "b",
                "after its invalidation, before it answered",
                invalidation("two", after=True),
            ),
        ),
    ),
    Pair(
        "logout-vs-refresh",
        "logout",
        "refresh",
        prepared,
        logout,
        refresh,
        observe_session,
        (
            Interleaving("refresh-held", "b", AFTER_COMMIT, state_write("two", sessions_written)),
            Interleaving("logout-held", "a", AFTER_COMMIT, state_write("one", sessions_written)),
        ),
    ),
)


def steps(pair: Pair, scene: Scene) -> dict[str, Callable[[], None]]:
    """The pair's steps on this scene, each recording its answer."""

    def recorded(name: str, step: Callable[[Scene], Any]) -> Callable[[], None]:
        def run() -> None:
            scene.answers[name] = step(scene)

        return run

    return {"a": recorded(pair.a, pair.step_a), "b": recorded(pair.b, pair.step_b)}


def serial_outcomes(pair: Pair, workers: Workers, faker: Faker) -> dict[str, dict[str, Any]]:
    """What A;B and B;A give, each from a starting state of its own. Each must leave the caches
    as the database says (I1): otherwise the reference itself is wrong."""
    found = {}
    for order in ("ab", "ba"):
        scene = pair.prepare(workers, faker)
        run = steps(pair, scene)
        for step in order:
            run[step]()
        name = " then ".join(pair.a if step == "a" else pair.b for step in order)
        found[name] = observed = outcome(pair, scene)
        lying = {
            key: observed[key]
            for key in ("state entry unlike the database", "read cache entry")
            if observed.get(key, {}) not in ({}, "absent or as the database")
        }
        assert not lying, (
            f"{pair.name}: {name}, run one after the other, leaves a cache unlike the database: {lying}"
        )
    return found


@pytest.mark.parametrize(
    ("pair", "interleaving"),
    [pytest.param(p, i, id=f"{p.id}-{i.id}") for p in PAIRS for i in p.interleavings],
)
def test_a_chosen_interleaving_gives_what_a_serial_order_gives(
    workers: Workers, faker: Faker, pair: Pair, interleaving: Interleaving
) -> None:
    serial = serial_outcomes(pair, workers, faker)
    scene = pair.prepare(workers, faker)
    run = steps(pair, scene)
    with interleaving.point(scene, interleaving.where) as point:
        interleaved(point, run[interleaving.held], run["b" if interleaving.held == "a" else "a"])
    assert_one_of(pair.name, pair.describe(interleaving), outcome(pair, scene), serial)


@pytest.mark.parametrize("pair", PAIRS, ids=[p.id for p in PAIRS])
def test_a_free_race_gives_what_a_serial_order_gives(workers: Workers, faker: Faker, pair: Pair) -> None:
    serial = serial_outcomes(pair, workers, faker)
    for round_ in range(1, RACES + 1):
        scene = pair.prepare(workers, faker)
        run = steps(pair, scene)
        raced = race(run["a"], run["b"])
        assert raced.errors == [], f"{pair.name}, free race {round_}: {raced.errors!r}"
        assert_one_of(pair.name, f"free race {round_} of {RACES}", outcome(pair, scene), serial)
