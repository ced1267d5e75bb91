"""The rule "command handlers write the session state, event consumers only verify it or update
their own group" (DESIGN §3, I3-I5) under real asynchrony: the web app in this process, the
relay and the worker as real `user-service` processes started later, all sharing PostgreSQL,
RabbitMQ and the session state in Redis. A consumer that runs seconds after the command, or
gets its events in the wrong order, must not undo what the command path already wrote."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID, uuid4

import pytest
from sqlalchemy import select

from adapters.events.registry import REGISTRY
from adapters.rabbitmq.publisher import RabbitPublisher
from adapters.sqlalchemy.tables import login_activity
from app import config
from app.events.processes import topology
from app.events.relay import outgoing
from app.factory import create_app
from domain.auth.events import UserLoggedIn, UserLoggedOut
from domain.messages import Envelope
from domain.session_state.model import Roles, SubscriptionSummary, UserState, Versioned
from domain.subscriptions.events import UserSubscriptionStatusChanged
from domain.users.commands import ChangeUserRoles, RegisterUser
from domain.users.events import UserRolesChanged
from tests import factories
from tests.integration import event_soak_support
from tests.integration.event_soak_support import eventually, log_lines, outbox_events, processed
from tests.support.rabbitmq import AMQP_URL

pytestmark = pytest.mark.postgres

# The fixture of the shared environment (event_processes comes from conftest.py).
shared_env = event_soak_support.shared_env

ACTIVITY = "auth.record_login_activity"
ROLES_STATE = "auth.update_roles_state"
SUBSCRIPTION_STATE = "subscriptions.update_subscription_state"


class Web:
    """One web process's worth of the service: its own container (engine, Redis clients) over
    the shared database, broker and Redis."""

    def __init__(self, env: dict[str, str]) -> None:
        self.app = create_app(env)
        self.client = self.app.test_client()
        self.container = self.app.extensions["container"]
        self.engine = self.container.storage.engine()
        self.states = self.container.caching.states()

    def state(self, user_id: UUID) -> UserState | None:
        return self.states.read(user_id, reader="test")

    def close(self) -> None:
        self.engine.dispose()


@pytest.fixture
def web(shared_env) -> Iterator[Web]:
    web = Web(shared_env)
    yield web
    web.close()


def bearer(tokens: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def sign_up(web: Web, faker) -> tuple[UUID, dict]:
    """A user registered and logged in over HTTP: its id and the login's token pair."""
    data = factories.registration(faker)
    registered = web.client.post("/api/users", json=data)
    assert registered.status_code == 201, registered.get_json()
    login = web.client.post("/api/auth/login", json={"email": data["email"], "password": data["password"]})
    assert login.status_code == 200, login.get_json()
    return UUID(registered.get_json()["id"]), login.get_json()


def admin(web: Web, faker) -> dict[str, str]:
    """An admin's Authorization header (made the way `user-service create-admin` does)."""
    data = factories.registration(faker)
    bus = web.container.bus()
    user = bus.handle(RegisterUser(**data))
    bus.handle(ChangeUserRoles(user_id=user.id, roles=frozenset({"user", "admin"})))
    login = web.client.post("/api/auth/login", json={"email": data["email"], "password": data["password"]})
    assert login.status_code == 200
    return bearer(login.get_json())


def subscribe_and_pay(web: Web, tokens: dict, admin_headers: dict[str, str]) -> str:
    """A monthly subscription for the user, activated by an admin's payment (README); its id."""
    subscribed = web.client.post("/api/subscriptions", json={"plan": "monthly"}, headers=bearer(tokens))
    assert subscribed.status_code == 201, subscribed.get_json()
    subscription_id = subscribed.get_json()["id"]
    payment = {"subscription_id": subscription_id, "reference": f"pay_{uuid4().hex}", "amount": 900}
    paid = web.client.post(
        f"/api/subscriptions/{subscription_id}/payments",
        json={**payment, "currency": "EUR"},
        headers=admin_headers,
    )
    assert paid.status_code == 202, paid.get_json()
    return subscription_id


def activity_of(web: Web, user_id: UUID) -> dict[UUID, str]:
    """The login_activity rows of a user, read from the database: kind by id (the event's id)."""
    query = select(login_activity.c.id, login_activity.c.kind).where(login_activity.c.user_id == user_id)
    with web.engine.connect() as connection:
        return {row.id: row.kind for row in connection.execute(query)}


def session_events_of(web: Web, user_id: UUID) -> dict[UUID, str]:
    """The UserLoggedIn / UserLoggedOut events of a user in the outbox: kind by event id."""
    return {
        event.event_id: event.kind
        for kind in (UserLoggedIn, UserLoggedOut)
        for _, _, event in outbox_events(web.engine, kind)
        if event.user_id == user_id
    }


def test_refresh_writes_the_state_before_returning_and_the_late_login_consumer_only_reads_it(
    shared_env, web, event_processes, faker
):
    """I4 with no worker running, then the delayed UserLoggedIn consumer in another process
    finds the state the handlers wrote (no miss) and records the activity."""
    other = Web(shared_env)  # a second web process: the next request lands there
    try:
        user_id, first = sign_up(web, faker)
        control_id, _ = sign_up(web, faker)
        web.states.delete(control_id)  # as if evicted: the consumer will miss this one's state

        renewed = web.client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
        assert renewed.status_code == 200, renewed.get_json()
        second = renewed.get_json()
        # When refresh returns, the state already holds the rotated session, and nothing else
        # ran in between: no relay, no worker.
        state = web.state(user_id)
        assert state is not None and state.sessions is not None
        live = state.sessions.value.live[UUID(second["session_id"])]
        assert live.refresh_digest == web.container.tokens().digest(second["refresh_token"])
        assert other.client.get("/api/auth/me", headers=bearer(second)).status_code == 200
        reused = other.client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
        assert reused.status_code == 401  # and, presented again, it ends the session (by design)

        events = session_events_of(web, user_id)
        assert sorted(events.values()) == ["login", "refresh", "refresh_reused"]
        control_events = session_events_of(web, control_id)
        assert activity_of(web, user_id) == {}  # nothing consumed yet: it runs in workers only

        event_processes.relay(shared_env)
        worker = event_processes.worker(shared_env)
        eventually(
            lambda: processed(web.engine, ACTIVITY, [*events, *control_events]) == {*events, *control_events},
            what="the worker's processing of the session events",
        )
        assert activity_of(web, user_id) == events  # one row per event, its id the event's
        assert activity_of(web, control_id) == control_events
        log = worker.log_text()
        assert log_lines(log, "user_state.miss", user=user_id) == [], log
        # The check can fail: the state removed behind the handlers' back is reported.
        assert log_lines(log, "user_state.miss", user=control_id) != [], log
    finally:
        other.close()


def test_a_late_login_consumer_leaves_a_newer_subscription_group_and_the_roles_alone(
    shared_env, web, event_processes, faker
):
    """I5: the login is in the outbox, then the subscription is registered and paid, so the
    cached subscription group is newer than the login; the whole worker runs after that."""
    admin_headers = admin(web, faker)
    user_id, tokens = sign_up(web, faker)
    (login_id,) = session_events_of(web, user_id)
    subscription_id = subscribe_and_pay(web, tokens, admin_headers)
    before = web.state(user_id)
    assert before is not None and before.subscription is not None and before.roles is not None
    summary = before.subscription.value
    assert summary is not None and summary.status == "active"
    assert summary.subscription_id == UUID(subscription_id)
    me_before = web.client.get("/api/auth/me", headers=bearer(tokens)).get_json()
    assert web.client.get("/api/premium", headers=bearer(tokens)).status_code == 200

    layout = topology(config.load(shared_env))
    expected = {
        (envelope.event_id, name)
        for _, envelope, _ in outbox_events(web.engine)
        for name, types in layout.bindings.items()
        if envelope.type in types
    }
    assert (login_id, ACTIVITY) in expected
    event_processes.relay(shared_env)
    worker = event_processes.worker(shared_env)  # every worker subscriber
    names = {name for _, name in expected}

    def done() -> bool:
        return {(event, name) for name in names for event in processed(web.engine, name)} >= expected

    eventually(done, what="the worker's processing of every event")
    assert login_id in activity_of(web, user_id)
    after = web.state(user_id)
    assert after is not None
    assert after.subscription == before.subscription
    assert after.roles == before.roles
    assert after == before  # and nothing else moved either
    assert web.client.get("/api/auth/me", headers=bearer(tokens)).get_json() == me_before
    assert web.client.get("/api/premium", headers=bearer(tokens)).status_code == 200
    assert log_lines(worker.log_text(), "user_state.miss") == []


class Delivery:
    """Publishes chosen outbox envelopes to the broker itself, in the order it is told, as
    the relay would (app.events.relay.outgoing), to a worker process started first (it
    declares the queues)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.publisher = RabbitPublisher(AMQP_URL, topology(config.load(env)))

    def send(self, envelope: Envelope) -> None:
        self.publisher.publish([outgoing(envelope, REGISTRY.dumps)])

    def close(self) -> None:
        self.publisher.close()


@pytest.fixture
def delivery(shared_env) -> Iterator[Delivery]:
    delivery = Delivery(shared_env)
    yield delivery
    delivery.close()


def test_roles_changes_delivered_newest_first_leave_the_newest_roles(
    shared_env, web, event_processes, delivery, faker
):
    """I3: the second change (version n+1, back to "user") reaches the worker before the
    first (version n, "admin" granted); the late older one is refused by the roles group's
    version compare-and-set, so the user does not end up an admin."""
    event_processes.worker(shared_env, ROLES_STATE)
    admin_headers = admin(web, faker)
    user_id, tokens = sign_up(web, faker)
    for roles in (["user", "admin"], ["user"]):
        changed = web.client.put(f"/api/users/{user_id}/roles", json={"roles": roles}, headers=admin_headers)
        assert changed.status_code == 200, changed.get_json()
    (_, older_envelope, older), (_, newer_envelope, newer) = [
        (position, envelope, event)
        for position, envelope, event in outbox_events(web.engine, UserRolesChanged)
        if event.user_id == user_id
    ]
    assert (older.roles, newer.roles) == ({"admin", "user"}, {"user"})
    assert newer.version == older.version + 1
    newest = Versioned(newer.version, Roles(frozenset({"user"})))
    state = web.state(user_id)
    assert state is not None and state.roles == newest  # the in-process copy wrote it at once

    web.states.delete(user_id)  # expired, say: from now on only the worker writes the group
    delivery.send(newer_envelope)
    eventually(lambda: processed(web.engine, ROLES_STATE, [newer.event_id]), what="the newer change")
    assert web.state(user_id) == UserState(user_id, roles=newest)  # the worker wrote it
    delivery.send(older_envelope)
    eventually(lambda: processed(web.engine, ROLES_STATE, [older.event_id]), what="the older change")
    assert web.state(user_id) == UserState(user_id, roles=newest)  # refused: not moved back

    assert web.client.get("/api/auth/me", headers=bearer(tokens)).get_json()["roles"] == ["user"]
    assert web.client.get("/api/users", headers=bearer(tokens)).status_code == 403


def test_subscription_changes_delivered_newest_first_leave_the_newest_summary(
    shared_env, web, event_processes, delivery, faker
):
    """I3 for the subscription group: UserSubscriptionStatusChanged carries the user's
    subscriptions version, which the consumer's write compares on. The cancel (newer) is
    delivered before the activation (older): the user stays cancelled, not entitled."""
    event_processes.worker(shared_env, SUBSCRIPTION_STATE)
    admin_headers = admin(web, faker)
    user_id, tokens = sign_up(web, faker)
    subscription_id = subscribe_and_pay(web, tokens, admin_headers)
    cancelled = web.client.post(f"/api/subscriptions/{subscription_id}/cancel", headers=bearer(tokens))
    assert cancelled.status_code == 200, cancelled.get_json()
    (_, activated_envelope, activated), (_, cancelled_envelope, cancel) = [
        (position, envelope, event)
        for position, envelope, event in outbox_events(web.engine, UserSubscriptionStatusChanged)
        if event.user_id == user_id
    ]
    assert (activated.status, cancel.status) == ("active", "cancelled")
    assert cancel.version > activated.version
    newest = Versioned(
        cancel.version,
        SubscriptionSummary("monthly", "cancelled", cancel.current_period_end, UUID(subscription_id)),
    )
    state = web.state(user_id)
    assert state is not None and state.subscription == newest  # the in-process copy wrote it

    web.states.delete(user_id)
    delivery.send(cancelled_envelope)
    eventually(lambda: processed(web.engine, SUBSCRIPTION_STATE, [cancel.event_id]), what="the cancel")
    assert web.state(user_id) == UserState(user_id, subscription=newest)
    delivery.send(activated_envelope)
    eventually(lambda: processed(web.engine, SUBSCRIPTION_STATE, [activated.event_id]), what="the activation")
    assert web.state(user_id) == UserState(user_id, subscription=newest)  # refused: not moved back

    assert web.client.get("/api/premium", headers=bearer(tokens)).status_code == 403
    me = web.client.get("/api/auth/me", headers=bearer(tokens)).get_json()
    assert me["subscription"]["status"] == "cancelled"
