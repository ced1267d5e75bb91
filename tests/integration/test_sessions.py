"""Session state that never lies (DESIGN §3, §7; invariants I2 to I5), on the in-memory adapters
and on the real Redis with PostgreSQL: the app as it runs, driven through its message bus and
HTTP, the state inspected in the store itself."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from uuid import UUID

import pytest
from flask import Flask

from app.factory import create_app
from application.session_state.states import load_state
from domain.auth.commands import Login
from domain.session_state.model import SubscriptionSummary, UserState, Versioned
from domain.users.commands import ChangeUserRoles
from tests.api.conftest import make_admin
from tests.integration.backends import app_on_postgres_and_redis
from tests.settings import TEST_ENV
from tests.support.accounts import Account, register
from tests.support.races import race


@pytest.fixture(params=["memory", "local+sqlite", pytest.param("redis+postgres", marks=pytest.mark.postgres)])
def app(request: pytest.FixtureRequest, tmp_path) -> Iterator[Flask]:
    if request.param == "memory":
        yield create_app(TEST_ENV)
        return
    if request.param == "local+sqlite":  # the embedded default: the host's shared file, SQLite
        yield create_app(
            {
                **TEST_ENV,
                "CACHE_URL": f"local://{tmp_path / 'cache.db'}",
                "DATABASE_URL": f"sqlite:///{tmp_path / 'users.db'}",
            }
        )
        return
    with app_on_postgres_and_redis(request, tmp_path, "sessions") as app:
        yield app


@pytest.fixture
def account(app: Flask, faker) -> Account:
    return register(container(app).bus(), container(app).mailer().outbox, faker)


def container(app: Flask):
    return app.extensions["container"]


def stored(app: Flask, user_id: UUID) -> UserState | None:
    return container(app).caching.states().read(user_id, reader="test")


def from_database(app: Flask, user_id: UUID) -> UserState | None:
    c = container(app)
    with c.storage.read_uow() as uow:
        return load_state(uow, user_id, c.clock().now())


def values(state: UserState) -> tuple:
    """What the auth groups say. Versions may differ from a rebuild's where a group's source
    moved on without changing it (a roles change leaves the identity group at its version)."""
    return (state.identity.value, state.sessions.value, state.roles.value)


def login(app: Flask, account: Account) -> dict:
    response = app.test_client().post(
        "/api/auth/login", json={"email": account.email, "password": account.password}
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def bearer(tokens: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


# -- I4: refresh -------------------------------------------------------------------------------


def test_refresh_has_written_the_new_session_when_it_returns(app: Flask, account: Account) -> None:
    client = app.test_client()
    first = login(app, account)
    before = stored(app, account.id)
    refreshed = client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert refreshed.status_code == 200
    new = refreshed.get_json()
    state = stored(app, account.id)
    session = state.sessions.value.live[UUID(new["session_id"])]
    assert session.refresh_digest == container(app).tokens().digest(new["refresh_token"])
    assert state.sessions.version == before.sessions.version + 1
    assert client.get("/api/auth/me", headers=bearer(new)).status_code == 200  # the very next request
    old = client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert old.status_code == 401
    # Replaying the rotated token ended the session: its newest tokens are dead too.
    assert client.get("/api/auth/me", headers=bearer(new)).status_code == 401
    assert client.post("/api/auth/refresh", json={"refresh_token": new["refresh_token"]}).status_code == 401
    assert UUID(new["session_id"]) not in stored(app, account.id).sessions.value.live


# -- I5: a UserLoggedIn consumer never changes the subscription group ---------------------------


def test_session_events_leave_the_subscription_group_as_it_was(app: Flask, account: Account) -> None:
    client = app.test_client()
    tokens = login(app, account)
    summary = SubscriptionSummary("pro", "active", datetime(2027, 1, 1, tzinfo=UTC))
    container(app).caching.states().write(UserState(account.id, subscription=Versioned(7, summary)))
    tokens = client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).get_json()
    login(app, account)
    assert client.post("/api/auth/logout", headers=bearer(tokens)).status_code == 204
    activity = client.get(f"/api/users/{account.id}/activity", headers=bearer(login(app, account)))
    assert [row["kind"] for row in activity.get_json()["items"]][:4] == [
        "login",
        "logout",
        "login",
        "refresh",
    ]
    assert stored(app, account.id).subscription == Versioned(7, summary)


# -- I3: no stale writer wins ------------------------------------------------------------------


class StoreInBetween:
    """The app's store, with something in between (the subclasses)."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def read(self, user_id, *, reader):
        return self.inner.read(user_id, reader=reader)

    def delete(self, user_id):
        return self.inner.delete(user_id)

    def write(self, state):
        return self.inner.write(state)


class GatedStore(StoreInBetween):
    """The first write made on `gated_thread` waits until `go` is set."""

    def __init__(self, inner) -> None:
        super().__init__(inner)
        self.gated_thread: int | None = None
        self.reached, self.go = threading.Event(), threading.Event()

    def write(self, state):
        if threading.get_ident() == self.gated_thread and not self.reached.is_set():
            self.reached.set()
            assert self.go.wait(10), "the test never let the gated write go"
        return self.inner.write(state)


def held_back(app: Flask, slow, meanwhile) -> object:
    """Run `slow()` on a thread whose first state write waits until `meanwhile()` has run; the
    result of `slow()`."""
    c = container(app)
    gate = GatedStore(c.caching.states())
    c.caching.states.override(gate)  # handlers and consumers resolve their store on every call
    outcome: dict = {}

    def run() -> None:
        gate.gated_thread = threading.get_ident()
        outcome["result"] = slow()

    try:
        thread = threading.Thread(target=run)
        thread.start()
        assert gate.reached.wait(10), "the held-back work never wrote its state"
        meanwhile()
        gate.go.set()
        thread.join(10)
    finally:
        gate.go.set()
        c.caching.states.reset_override()
    return outcome["result"]


def test_a_login_that_read_before_a_roles_change_cannot_overwrite_the_new_roles(
    app: Flask, account: Account, faker
) -> None:
    admin = make_admin(app, faker)
    new_roles = []

    def change_roles() -> None:
        # The login has committed its session, with the user as it was, and waits to write.
        changed = app.test_client().put(
            f"/api/users/{account.id}/roles", json={"roles": ["user", "admin"]}, headers=admin
        )
        assert changed.status_code == 200
        new_roles.append(stored(app, account.id).roles)
        assert new_roles[0].value.roles == {"user", "admin"}

    tokens = held_back(app, lambda: login(app, account), change_roles)
    state = stored(app, account.id)
    assert state.roles == new_roles[0], "the slower login's full write put the old roles back"
    assert values(state) == values(from_database(app, account.id))
    me = app.test_client().get("/api/auth/me", headers=bearer(tokens))
    assert sorted(me.get_json()["roles"]) == ["admin", "user"]


# -- I2: concurrent writers of different groups lose nothing --------------------------------------

ROUNDS = 15
LOGINS = ROLE_CHANGES = SUBSCRIPTION_WRITERS = 4
SUBSCRIPTION_WRITES = 3  # per writer


class JitteryStore(StoreInBetween):
    """The app's store behind a network of varying delay: every write waits 0 to 3 ms, so
    writes made in one order reach the store in another."""

    def __init__(self, inner, seed: int) -> None:
        super().__init__(inner)
        self.random = random.Random(seed)

    def write(self, state):
        time.sleep(self.random.random() * 0.003)
        return self.inner.write(state)


def test_concurrent_logins_roles_changes_and_subscription_writes_lose_nothing(
    app: Flask, account: Account, faker
) -> None:
    c = container(app)
    # Another admin, so that the account's admin role may come and go (the last one's may not).
    other = register(c.bus(), c.mailer().outbox, faker)
    c.bus().handle(ChangeUserRoles(user_id=other.id, roles=frozenset({"user", "admin"})))
    states = JitteryStore(c.caching.states(), seed=20261121)
    c.caching.states.override(states)
    try:
        check_concurrent_writers(app, account, c.bus(), states)
    finally:
        c.caching.states.reset_override()


def check_concurrent_writers(app: Flask, account: Account, bus, states: JitteryStore) -> None:
    roles_sets = [frozenset({"user"}), frozenset({"user", "admin"})]
    subscription_version = 0
    for round_ in range(ROUNDS):
        versions = list(
            range(
                subscription_version + 1,
                subscription_version + 1 + SUBSCRIPTION_WRITERS * SUBSCRIPTION_WRITES,
            )
        )
        states.random.shuffle(versions)
        subscription_version = max(versions)

        def log_in() -> None:
            bus.handle(Login(email=account.email, password=account.password, client_address="10.0.0.1"))

        def change_roles(i: int) -> None:
            bus.handle(ChangeUserRoles(user_id=account.id, roles=roles_sets[(round_ + i) % 2]))

        def write_subscriptions(mine: list[int]) -> None:
            for version in mine:  # out of order: only the newest may stay
                summary = SubscriptionSummary("pro", "active", None)
                states.write(UserState(account.id, subscription=Versioned(version, summary)))

        outcome = race(
            *[log_in] * LOGINS,
            *[lambda i=i: change_roles(i) for i in range(ROLE_CHANGES)],
            *[
                lambda n=n: write_subscriptions(versions[n::SUBSCRIPTION_WRITERS])
                for n in range(SUBSCRIPTION_WRITERS)
            ],
        )
        assert not outcome.errors, f"round {round_}: {outcome.errors!r}"
        state = stored(app, account.id)
        truth = from_database(app, account.id)
        assert values(state) == values(truth), f"round {round_}: the cached state lost a write"
        assert state.roles.version == truth.roles.version and state.sessions.version == truth.sessions.version
        assert state.subscription.version == subscription_version, (
            f"round {round_}: a subscription write was lost"
        )
    assert len(truth.sessions.value.live) == ROUNDS * LOGINS


# -- every authenticated request checks the state: lockouts take effect at once -------------------


def two_sessions(app: Flask, account: Account) -> tuple[dict, dict]:
    """Two logged-in devices, each with its state cached and the user entry read (a cache hit next)."""
    a, b = login(app, account), login(app, account)
    client = app.test_client()
    for tokens in (a, b):
        assert client.get(f"/api/users/{account.id}", headers=bearer(tokens)).status_code == 200
        assert client.get(f"/api/users/{account.id}", headers=bearer(tokens)).status_code == 200
    return a, b


def test_logout_locks_the_token_out_on_the_next_request(app: Flask, account: Account) -> None:
    client = app.test_client()
    a, b = two_sessions(app, account)
    assert client.post("/api/auth/logout", headers=bearer(a)).status_code == 204
    assert client.get(f"/api/users/{account.id}", headers=bearer(a)).status_code == 401
    assert client.get("/api/auth/me", headers=bearer(a)).status_code == 401
    assert client.post("/api/auth/refresh", json={"refresh_token": a["refresh_token"]}).status_code == 401
    assert client.get(f"/api/users/{account.id}", headers=bearer(b)).status_code == 200  # the other device


def test_deletion_locks_every_token_out_on_the_next_request(app: Flask, account: Account) -> None:
    client = app.test_client()
    a, b = two_sessions(app, account)
    assert client.delete(f"/api/users/{account.id}", headers=bearer(a)).status_code == 204
    for tokens in (a, b):
        assert client.get(f"/api/users/{account.id}", headers=bearer(tokens)).status_code == 401
        assert client.get("/api/auth/me", headers=bearer(tokens)).status_code == 401
    assert stored(app, account.id).identity.value.status == "deleted"


def test_a_password_change_locks_the_other_sessions_out_on_the_next_request(
    app: Flask, account: Account
) -> None:
    client = app.test_client()
    a, b = two_sessions(app, account)
    changed = client.patch(
        f"/api/users/{account.id}",
        json={"password": "Changed123", "old_password": account.password},
        headers=bearer(a),
    )
    assert changed.status_code == 200
    assert client.get(f"/api/users/{account.id}", headers=bearer(b)).status_code == 401
    assert client.post("/api/auth/refresh", json={"refresh_token": b["refresh_token"]}).status_code == 401
    assert client.get(f"/api/users/{account.id}", headers=bearer(a)).status_code == 200  # it was made here


def test_disabling_locks_every_token_out_on_the_next_request(app: Flask, account: Account, faker) -> None:
    client = app.test_client()
    a, b = two_sessions(app, account)
    admin = make_admin(app, faker)
    assert (
        client.put(f"/api/users/{account.id}/status", json={"status": "disabled"}, headers=admin).status_code
        == 200
    )
    for tokens in (a, b):
        assert client.get(f"/api/users/{account.id}", headers=bearer(tokens)).status_code == 401
    refused = client.post("/api/auth/login", json={"email": account.email, "password": account.password})
    assert refused.status_code == 401
