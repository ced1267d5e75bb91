"""Login, refresh, logout and authentication (DESIGN §3, §4, §7) through the real composition root
on the in-memory adapters: tokens, their expiry, the session state the handlers write, the
commands that end sessions, and login throttling."""

from __future__ import annotations

import pytest

from domain.auth.commands import Login, Logout, RefreshToken
from domain.auth.events import UserLoggedIn, UserLoggedOut
from domain.auth.model import MAX_LIVE_SESSIONS
from domain.auth.queries import Authenticate, Principal, TokenPair
from domain.errors import InvalidCredentials, Throttled, Unauthenticated
from domain.session_state.model import AccountStatus
from domain.users.commands import (
    ChangeUserRoles,
    ChangeUserStatus,
    ConfirmPasswordReset,
    DeleteUser,
    RequestPasswordReset,
    UpdateUser,
)
from tests import factories


def login(bus, account, **request) -> TokenPair:
    user, password = account
    return bus.handle(Login(email=user.email, password=password, **request))


def authenticates(bus, pair: TokenPair) -> bool:
    try:
        bus.handle(Authenticate(pair.access_token))
    except Unauthenticated:
        return False
    return True


def refreshes(bus, pair: TokenPair) -> bool:
    try:
        bus.handle(RefreshToken(refresh_token=pair.refresh_token))
    except Unauthenticated:
        return False
    return True


def stored(container, user_id):
    return container.caching.states().read(user_id, reader="test")


def test_login_gives_a_token_pair_whose_access_token_authenticates(bus, clock, account):
    user, password = account
    pair = bus.handle(Login(email=f"  {user.email.upper()}", password=password))
    assert (pair.user_id, pair.expires_in) == (user.id, 15 * 60)
    assert pair.access_token != pair.refresh_token
    principal = bus.handle(Authenticate(pair.access_token))
    assert principal == Principal(user.id, pair.session_id, user.email, frozenset({"user"}), clock.now())


def test_logged_in_is_published_only_once_the_state_holds_the_session(container, bus, account):
    tokens, seen = container.tokens(), []
    # Records what a consumer would find in the store when the event reaches it (an assertion
    # here would be swallowed and retried by the bus).
    container.event_bus().subscribe(UserLoggedIn, lambda e: seen.append((e, stored(container, e.user_id))))

    pair = login(bus, account)
    renewed = bus.handle(RefreshToken(refresh_token=pair.refresh_token))

    assert [(e.kind, e.session_id) for e, _ in seen] == [
        ("login", pair.session_id),
        ("refresh", pair.session_id),
    ]
    for (_, state), current in zip(seen, (pair, renewed), strict=True):
        # Every group the login owns (the subscription group is its owners' alone).
        assert state is not None and None not in (state.identity, state.sessions, state.roles)
        assert state.identity.value.email == account[0].email
        assert state.roles.value.roles == {"user"}
        assert state.sessions.value.live[pair.session_id].refresh_digest == tokens.digest(
            current.refresh_token
        )
    assert container.event_bus().dead_letters == []


def test_wrong_password_unknown_email_and_disabled_account_are_refused_alike(bus, events, faker, account):
    disabled = bus.handle(factories.register_user(faker, password="Disabled123"))
    bus.handle(ChangeUserStatus(user_id=disabled.id, status="disabled"))
    attempts = [
        Login(email=account[0].email, password="Wrong1234"),
        Login(email=faker.unique.email(), password=account[1]),
        Login(email=disabled.email, password="Disabled123"),
    ]
    messages = set()
    for attempt in attempts:
        with pytest.raises(InvalidCredentials) as refused:
            bus.handle(attempt)
        messages.add(str(refused.value))
    assert messages == {"The email or password is incorrect."}
    assert events.of(UserLoggedIn) == []


def test_refresh_rotates_and_a_rotated_token_ends_the_session(bus, events, account):
    first = login(bus, account)
    second = bus.handle(RefreshToken(refresh_token=first.refresh_token))
    assert second.session_id == first.session_id
    assert second.refresh_token != first.refresh_token
    third = bus.handle(RefreshToken(refresh_token=second.refresh_token))  # the new one works, once
    assert authenticates(bus, third)

    with pytest.raises(Unauthenticated, match="already used"):
        bus.handle(RefreshToken(refresh_token=first.refresh_token))

    assert not authenticates(bus, third)
    assert not refreshes(bus, third)
    [ended] = events.of(UserLoggedOut)
    assert (ended.session_id, ended.kind) == (first.session_id, "refresh_reused")


def test_access_token_expires_after_fifteen_minutes_and_refresh_renews_it(bus, clock, account):
    pair = login(bus, account)
    clock.advance(minutes=14, seconds=59)
    assert authenticates(bus, pair)
    clock.advance(seconds=2)
    assert not authenticates(bus, pair)
    renewed = bus.handle(RefreshToken(refresh_token=pair.refresh_token))
    assert authenticates(bus, renewed)


def test_refresh_token_expires_after_fourteen_days(bus, clock, account):
    early, late = login(bus, account), login(bus, account)
    clock.advance(days=13, hours=23, minutes=59)
    assert refreshes(bus, early)
    clock.advance(minutes=1, seconds=1)
    with pytest.raises(Unauthenticated, match="invalid or expired"):
        bus.handle(RefreshToken(refresh_token=late.refresh_token))


def test_logout_ends_the_session_and_is_idempotent(container, bus, events, account):
    pair, other = login(bus, account), login(bus, account)
    logout = Logout(user_id=pair.user_id, session_id=pair.session_id)
    assert bus.handle(logout) is None
    assert pair.session_id not in stored(container, pair.user_id).sessions.value.live  # before it returned
    assert bus.handle(logout) is None

    assert not authenticates(bus, pair) and not refreshes(bus, pair)
    assert authenticates(bus, other)
    assert [(e.session_id, e.kind) for e in events.of(UserLoggedOut)] == [(pair.session_id, "logout")]


def test_a_login_beyond_the_live_session_limit_ends_the_least_recently_used_one(bus, clock, account):
    pairs = []
    for _ in range(MAX_LIVE_SESSIONS):
        pairs.append(login(bus, account))
        clock.advance(seconds=1)
    bus.handle(RefreshToken(refresh_token=pairs[0].refresh_token))  # the first is used again
    newest = login(bus, account)
    assert authenticates(bus, newest) and authenticates(bus, pairs[0])
    assert not authenticates(bus, pairs[1]) and not refreshes(bus, pairs[1])
    assert all(authenticates(bus, pair) for pair in pairs[2:])


def test_password_change_ends_every_other_session(bus, account):
    user, password = account
    here, elsewhere = login(bus, account), login(bus, account)
    bus.handle(
        UpdateUser(user_id=user.id, password="Changed123", old_password=password, session_id=here.session_id)
    )
    assert authenticates(bus, here)
    assert not authenticates(bus, elsewhere) and not refreshes(bus, elsewhere)
    assert refreshes(bus, here)


def test_password_reset_ends_every_session(bus, outbox, account):
    user, _ = account
    sessions = [login(bus, account), login(bus, account)]
    bus.handle(RequestPasswordReset(email=user.email))
    token = next(m.params["token"] for m, _ in outbox if m.template == "reset_password")
    bus.handle(ConfirmPasswordReset(token=token, password="Reset12345"))
    assert [authenticates(bus, pair) for pair in sessions] == [False, False]
    assert [refreshes(bus, pair) for pair in sessions] == [False, False]
    assert authenticates(bus, bus.handle(Login(email=user.email, password="Reset12345")))


def test_deleted_user_leaves_a_tombstone_and_its_tokens_stop_working(container, bus, account):
    pair = login(bus, account)
    bus.handle(DeleteUser(user_id=pair.user_id))
    assert stored(container, pair.user_id).identity.value.status == AccountStatus.DELETED
    assert not authenticates(bus, pair) and not refreshes(bus, pair)
    with pytest.raises(InvalidCredentials):
        login(bus, account)


def test_disabling_ends_sessions_and_enabling_allows_a_new_login(container, bus, account):
    user, _ = account
    pair = login(bus, account)
    bus.handle(ChangeUserStatus(user_id=user.id, status="disabled"))
    state = stored(container, user.id)
    assert (state.identity.value.status, dict(state.sessions.value.live)) == (AccountStatus.DISABLED, {})
    assert not authenticates(bus, pair) and not refreshes(bus, pair)
    with pytest.raises(InvalidCredentials):
        login(bus, account)

    bus.handle(ChangeUserStatus(user_id=user.id, status="active"))
    assert authenticates(bus, login(bus, account))
    assert not authenticates(bus, pair)  # what disabling ended stays ended


def test_a_missing_state_is_rebuilt_from_the_database_and_written_back(container, bus, clock, account):
    pair = login(bus, account)
    container.caching.states().delete(pair.user_id)
    assert stored(container, pair.user_id) is None

    principal = bus.handle(Authenticate(pair.access_token))

    assert (principal.session_id, principal.email, principal.last_login_at) == (
        pair.session_id,
        account[0].email,
        clock.now(),
    )
    state = stored(container, pair.user_id)
    assert state is not None and state.complete
    live = state.sessions.value.live[pair.session_id]
    assert live.refresh_digest == container.tokens().digest(pair.refresh_token)


def test_an_entry_with_only_the_roles_group_is_completed(container, bus, account):
    pair = login(bus, account)
    container.caching.states().delete(pair.user_id)
    bus.handle(ChangeUserRoles(user_id=pair.user_id, roles=frozenset({"user", "admin"})))
    partial = stored(container, pair.user_id)
    assert partial.roles.value.roles == {"user", "admin"} and not partial.complete

    assert bus.handle(Authenticate(pair.access_token)).roles == {"user", "admin"}
    state = stored(container, pair.user_id)
    assert state.complete and pair.session_id in state.sessions.value.live
    assert state.identity.value.status == AccountStatus.ACTIVE


def test_five_failures_throttle_the_client_even_with_the_right_password(bus, events, faker, account):
    user, password = account
    attacker, elsewhere = faker.ipv4(), faker.ipv6()
    for _ in range(5):
        with pytest.raises(InvalidCredentials):
            bus.handle(Login(email=user.email, password="Wrong1234", client_address=attacker))
    with pytest.raises(Throttled) as throttled:
        login(bus, account, client_address=attacker)
    assert 0 < throttled.value.retry_after <= 15 * 60
    assert events.of(UserLoggedIn) == []
    assert login(bus, account, client_address=elsewhere).user_id == user.id


def test_unknown_emails_are_throttled_the_same_way(bus, faker):
    email, attacker = faker.unique.email(), faker.ipv4()
    for _ in range(5):
        with pytest.raises(InvalidCredentials):
            bus.handle(Login(email=email, password="Guess1234", client_address=attacker))
    with pytest.raises(Throttled) as throttled:
        bus.handle(Login(email=email, password="Guess1234", client_address=attacker))
    assert 0 < throttled.value.retry_after <= 15 * 60
    with pytest.raises(InvalidCredentials):
        bus.handle(Login(email=email, password="Guess1234", client_address=faker.ipv6()))
