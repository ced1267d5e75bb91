"""The one publish rule (ports.unit_of_work) as the handlers and consumers keep it, through the
real composition root on the in-memory adapters: when an event reaches a subscriber, the
transaction that caused it has committed and the state groups its handler owns are written."""

from __future__ import annotations

import inspect

import pytest

from adapters.caching import users as user_caches
from application.auth import handlers as auth
from application.subscriptions import handlers as subscriptions
from application.users import handlers as users
from domain.auth.commands import Login, Logout, RefreshToken
from domain.auth.events import UserLoggedOut
from domain.auth.queries import GetLoginActivity
from domain.errors import Unauthenticated
from domain.session_state.model import AccountStatus
from domain.subscriptions.commands import ConfirmPayment, RegisterSubscription
from domain.subscriptions.events import SubscriptionActivated
from domain.subscriptions.model import SubscriptionStatus
from domain.subscriptions.queries import GetSubscription
from domain.users.commands import (
    ChangeUserStatus,
    ConfirmPasswordReset,
    DeleteUser,
    RegisterUser,
    RequestPasswordReset,
    UpdateUser,
)
from domain.users.events import PasswordChanged, UserDeleted, UserUpdated
from domain.users.queries import PageRequest
from tests import factories


@pytest.fixture
def member(bus, outbox, faker):
    """A registered user and its password; the outbox emptied."""
    data = factories.registration(faker)
    user = bus.handle(RegisterUser(**data))
    outbox.clear()
    return user, data["password"]


def stored(container, user_id):
    return container.caching.states().read(user_id, reader="test")


def watch(container, kind: type, look) -> list:
    """What `look(event)` finds at the moment each event of `kind` is delivered (an assertion
    in a subscriber would be swallowed and retried by the bus)."""
    seen: list = []
    container.event_bus().subscribe(kind, lambda event: seen.append(look(event)))
    return seen


def test_no_handler_or_consumer_is_handed_the_event_bus():
    """Events leave through the unit of work only: nothing takes the bus as a port."""
    maps = [
        *(m.COMMAND_HANDLERS for m in (users, auth, subscriptions)),
        *(m.QUERY_HANDLERS for m in (users, auth, subscriptions)),
    ]
    handlers = [h for m in maps for h in m.values()]
    handlers += [
        h
        for m in (
            users.EVENT_HANDLERS,
            auth.EVENT_HANDLERS,
            subscriptions.EVENT_HANDLERS,
            user_caches.EVENT_HANDLERS,
        )
        for hs in m.values()
        for h in hs
    ]
    takes_bus = [h.__qualname__ for h in handlers if "events" in inspect.signature(h).parameters]
    assert takes_bus == []


def test_an_email_change_is_in_the_state_when_user_updated_is_delivered(container, bus, member):
    user, password = member
    seen = watch(container, UserUpdated, lambda e: stored(container, e.user_id).identity.value.email)
    bus.handle(UpdateUser(user_id=user.id, email="renamed@example.org", old_password=password))
    assert seen == ["renamed@example.org"]


def test_a_password_change_ends_the_other_sessions_before_it_is_announced(container, bus, member):
    user, password = member
    kept = bus.handle(Login(email=user.email, password=password))
    ended = bus.handle(Login(email=user.email, password=password))
    seen = watch(container, PasswordChanged, lambda e: set(stored(container, e.user_id).sessions.value.live))
    bus.handle(
        UpdateUser(user_id=user.id, password="Changed123", old_password=password, session_id=kept.session_id)
    )
    assert seen == [{kept.session_id}]
    assert ended.session_id not in seen[0]


def test_a_disabled_account_is_disabled_in_the_state_when_announced(container, bus, member):
    user, password = member
    bus.handle(Login(email=user.email, password=password))
    seen = watch(container, UserUpdated, lambda e: stored(container, e.user_id))
    bus.handle(ChangeUserStatus(user_id=user.id, status="disabled"))
    [state] = seen
    assert state.identity.value.status == AccountStatus.DISABLED
    assert state.sessions.value.live == {}


def test_a_deleted_account_is_a_tombstone_in_the_state_when_announced(container, bus, member):
    user, _ = member
    seen = watch(container, UserDeleted, lambda e: stored(container, e.user_id))
    bus.handle(DeleteUser(user_id=user.id))
    [state] = seen
    assert state is not None and state.identity.value.status == AccountStatus.DELETED


def test_a_password_reset_is_in_the_state_when_announced(container, bus, outbox, member):
    user, password = member
    bus.handle(Login(email=user.email, password=password))
    bus.handle(RequestPasswordReset(email=user.email))
    token = next(m.params["token"] for m, _ in outbox if m.template == "reset_password")
    seen = watch(container, PasswordChanged, lambda e: stored(container, e.user_id).sessions.value.live)
    bus.handle(ConfirmPasswordReset(token=token, password="Reset1234"))
    assert seen == [{}]


def test_a_logout_is_in_the_state_when_announced(container, bus, member):
    user, password = member
    pair = bus.handle(Login(email=user.email, password=password))
    seen = watch(container, UserLoggedOut, lambda e: set(stored(container, e.user_id).sessions.value.live))
    bus.handle(Logout(user_id=user.id, session_id=pair.session_id))
    assert seen == [set()]


def test_a_reused_refresh_token_is_refused_and_its_ended_session_still_announced(container, bus, member):
    """The handler commits and then raises: what it committed is published all the same."""
    user, password = member
    pair = bus.handle(Login(email=user.email, password=password))
    bus.handle(RefreshToken(refresh_token=pair.refresh_token))
    seen = watch(
        container, UserLoggedOut, lambda e: (e.kind, set(stored(container, e.user_id).sessions.value.live))
    )

    with pytest.raises(Unauthenticated):
        bus.handle(RefreshToken(refresh_token=pair.refresh_token))

    assert seen == [("refresh_reused", set())]
    activity = bus.handle(GetLoginActivity(user.id, PageRequest()))
    assert [a.kind for a in activity.items].count("refresh_reused") == 1  # its consumer ran
    assert container.event_bus().dead_letters == []


def test_a_consumers_events_leave_by_the_same_rule(container, bus, member):
    """activate_subscription records what its change caused in its own unit of work: when those
    events are delivered, the activation has committed."""
    user, _ = member
    subscription = bus.handle(RegisterSubscription(user_id=user.id, plan="monthly"))
    seen = watch(
        container,
        SubscriptionActivated,
        lambda e: bus.handle(GetSubscription(e.subscription_id, None)).status,
    )
    bus.handle(
        ConfirmPayment(
            subscription_id=subscription.id,
            reference="pay_rule",
            amount=900,
            currency="EUR",
            source="admin:test",
        )
    )
    assert seen == [SubscriptionStatus.ACTIVE]
    assert stored(container, user.id).subscription.value.status == "active"
    assert container.event_bus().dead_letters == []
