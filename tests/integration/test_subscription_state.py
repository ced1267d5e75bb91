"""The subscription group of UserState (DESIGN §3, §4; I2, I3, I5), on the in-memory adapters and
on the real Redis with PostgreSQL: written by RegisterSubscription's handler and then only by the
UserSubscriptionStatusChanged consumer, never lost to a login, never written by a consumer that
does not own it."""

from __future__ import annotations

import threading
from uuid import UUID, uuid4

import pytest
from flask import Flask

from app.containers import bound, consumer_ports
from application.auth import handlers as auth_handlers
from application.subscriptions import handlers as subscription_handlers
from application.users import handlers as user_handlers
from domain.auth.commands import Login
from domain.session_state.model import Group, Roles, UserState, Versioned, owned_groups, writes
from domain.subscriptions.commands import CancelSubscription, ConfirmPayment, RegisterSubscription
from domain.subscriptions.events import UserSubscriptionStatusChanged
from tests.api.conftest import make_admin
from tests.integration import test_sessions as sessions
from tests.integration.test_sessions import (
    Account,
    JitteryStore,
    bearer,
    container,
    from_database,
    held_back,
    login,
    stored,
    values,
)

app, account = sessions.app, sessions.account  # the same fixtures: memory, and Redis with PostgreSQL

PRICE = {"amount": 900, "currency": "EUR"}  # the default monthly plan


def subscribe(app: Flask, account: Account) -> UUID:
    return container(app).bus().handle(RegisterSubscription(user_id=account.id, plan="monthly")).id


def pay(app: Flask, subscription_id: UUID) -> None:
    command = ConfirmPayment(
        subscription_id=subscription_id, reference=f"ref-{uuid4()}", source="admin:test", **PRICE
    )
    container(app).bus().handle(command)


def truth(app: Flask, account: Account):
    return from_database(app, account.id).subscription


# -- the owners ---------------------------------------------------------------------------------

# DESIGN §3: the consumers that own a group, and which. Every other consumer only reads.
OWNERS = {
    "application.auth.consumers.update_roles_state": {Group.ROLES},
    "application.subscriptions.consumers.update_subscription_state": {Group.SUBSCRIPTION},
}


def every_consumer():
    from adapters.caching import users as user_caches

    maps = (
        user_handlers.EVENT_HANDLERS,
        auth_handlers.EVENT_HANDLERS,
        subscription_handlers.EVENT_HANDLERS,
        user_caches.EVENT_HANDLERS,
    )
    return {consumer for handlers in maps for consumers in handlers.values() for consumer in consumers}


def test_every_consumer_declares_exactly_the_groups_design_gives_it() -> None:
    declared = {f"{c.__module__}.{c.__qualname__}": owned_groups(c) for c in every_consumer()}
    assert set(OWNERS) <= set(declared)
    assert declared == {name: OWNERS.get(name, frozenset()) for name in declared}


def assert_only_owners_wrote(app: Flask) -> None:
    """A consumer that writes a group it does not own is refused, retried and dead-lettered."""
    dead = [(type(event).__name__, name) for event, name in container(app).event_bus().dead_letters]
    assert dead == [], f"consumers failed (a write of a group they do not own?): {dead}"


def test_the_whole_life_of_a_subscription_leaves_no_consumer_writing_what_it_does_not_own(
    app: Flask, account: Account, faker
) -> None:
    client = app.test_client()
    admin = make_admin(app, faker)
    tokens = login(app, account)
    subscription_id = subscribe(app, account)
    pay(app, subscription_id)
    pay(app, subscription_id)  # a renewal
    changed = client.put(f"/api/users/{account.id}/roles", json={"roles": ["user", "admin"]}, headers=admin)
    assert changed.status_code == 200
    tokens = client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).get_json()
    container(app).bus().handle(CancelSubscription(subscription_id=subscription_id, user_id=account.id))
    assert client.post("/api/auth/logout", headers=bearer(tokens)).status_code == 204
    assert_only_owners_wrote(app)
    state = stored(app, account.id)
    assert state.subscription == truth(app, account)
    assert state.subscription.value.status == "cancelled"


def test_a_consumer_writing_a_group_it_does_not_own_is_refused_and_fails_the_check(
    app: Flask, account: Account
) -> None:
    c = container(app)
    login(app, account)
    roles_before = stored(app, account.id).roles

    @writes(Group.SUBSCRIPTION)
    def meddling_consumer(event: UserSubscriptionStatusChanged, *, states) -> None:
        states.write(UserState(event.user_id, roles=Versioned(10**6, Roles(frozenset({"admin"})))))

    # Wired the way the composition root wires every consumer.
    ports = {"states": c.caching.states, "clock": c.clock}
    c.event_bus().subscribe(
        UserSubscriptionStatusChanged, bound(meddling_consumer, consumer_ports(meddling_consumer, ports))
    )
    pay(app, subscribe(app, account))

    assert stored(app, account.id).roles == roles_before
    assert stored(app, account.id).subscription.value.status == "active"  # the owner still wrote
    with pytest.raises(AssertionError, match="meddling_consumer"):
        assert_only_owners_wrote(app)


# -- activation, then a login -------------------------------------------------------------------


def test_activation_then_login_keeps_the_subscription(app: Flask, account: Account) -> None:
    client = app.test_client()
    tokens = login(app, account)
    assert client.get("/api/premium", headers=bearer(tokens)).status_code == 403
    subscription_id = subscribe(app, account)
    pay(app, subscription_id)
    active = stored(app, account.id).subscription
    assert (active.value.status, active.value.subscription_id) == ("active", subscription_id)

    again = login(app, account)
    refreshed = client.post("/api/auth/refresh", json={"refresh_token": again["refresh_token"]}).get_json()
    assert client.post("/api/auth/logout", headers=bearer(tokens)).status_code == 204

    assert stored(app, account.id).subscription == active
    assert_only_owners_wrote(app)
    assert client.get("/api/premium", headers=bearer(refreshed)).status_code == 200
    me = client.get("/api/auth/me", headers=bearer(refreshed)).get_json()
    assert (me["subscription"]["status"], me["subscription"]["id"]) == ("active", str(subscription_id))


def test_a_missing_entry_is_refilled_with_the_subscription(app: Flask, account: Account) -> None:
    """The entry expired (or was evicted): a login writes its own groups only, and the next
    authenticated request fills in the subscription from the database."""
    subscription_id = subscribe(app, account)
    pay(app, subscription_id)
    container(app).caching.states().delete(account.id)
    tokens = login(app, account)
    assert stored(app, account.id).subscription is None
    assert app.test_client().get("/api/premium", headers=bearer(tokens)).status_code == 200
    assert stored(app, account.id).subscription == truth(app, account)


# -- I3: a slow writer of the subscription group cannot win ---------------------------------------


def test_a_login_held_back_during_an_activation_does_not_undo_it(app: Flask, account: Account) -> None:
    subscription_id = subscribe(app, account)
    # The activation commits and writes while the login waits to write.
    tokens = held_back(app, lambda: login(app, account), lambda: pay(app, subscription_id))
    state = stored(app, account.id)
    assert state.subscription.value.status == "active"
    assert state.subscription == truth(app, account)
    assert app.test_client().get("/api/premium", headers=bearer(tokens)).status_code == 200


def test_a_refill_that_read_before_an_activation_cannot_put_pending_back(
    app: Flask, account: Account
) -> None:
    tokens = login(app, account)
    subscription_id = subscribe(app, account)
    container(app).caching.states().delete(account.id)  # the next request refills the entry from the database

    def request_premium() -> int:
        return app.test_client().get("/api/premium", headers=bearer(tokens)).status_code

    status = held_back(app, request_premium, lambda: pay(app, subscription_id))
    assert status == 403  # it read the subscription while it was pending
    assert stored(app, account.id).subscription == truth(app, account)
    assert app.test_client().get("/api/premium", headers=bearer(tokens)).status_code == 200


# -- I2: logins racing activations and cancellations -----------------------------------------------

ROUNDS = 20
LOGINS = 3


def test_logins_racing_activations_and_cancellations_lose_neither(app: Flask, account: Account) -> None:
    c = container(app)
    states = JitteryStore(c.caching.states(), seed=5)
    c.caching.states.override(states)
    bus = c.bus()
    try:
        for round_ in range(ROUNDS):
            subscription_id = subscribe(app, account)
            if round_ % 2:  # odd rounds: the cancellation of an active subscription races
                pay(app, subscription_id)
                change = lambda: bus.handle(  # noqa: E731
                    CancelSubscription(subscription_id=subscription_id, user_id=account.id)
                )
                expected = "cancelled"
            else:
                change = lambda: pay(app, subscription_id)  # noqa: E731
                expected = "active"
            errors: list[BaseException] = []
            start = threading.Barrier(LOGINS + 1)

            def run(work) -> None:
                try:
                    start.wait(10)
                    work()
                except BaseException as error:  # reported below, with the round
                    errors.append(error)

            def log_in() -> None:
                bus.handle(Login(email=account.email, password=account.password))

            threads = [threading.Thread(target=run, args=(log_in,)) for _ in range(LOGINS)]
            threads.append(threading.Thread(target=run, args=(change,)))
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
            assert not errors, f"round {round_}: {errors!r}"
            state, database = stored(app, account.id), from_database(app, account.id)
            assert state.subscription == database.subscription, f"round {round_}: subscription lost"
            assert state.subscription.value.status == expected
            assert values(state) == values(database), f"round {round_}: a login's groups were lost"
            if expected == "active":
                bus.handle(CancelSubscription(subscription_id=subscription_id, user_id=account.id))
        assert len(database.sessions.value.live) == ROUNDS * LOGINS
        assert_only_owners_wrote(app)
    finally:
        c.caching.states.reset_override()
