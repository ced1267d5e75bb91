# Over 200 lines: the fill against the composition it replaced for each kind of user, and its count.
"""load_state over UserStateSourceRepository, on every backend (in-memory, SQLite, PostgreSQL):
the state it builds is the one the repositories' own reads compose (users.get, sessions.get and
subscriptions.of_user: five statements), and on SQL it takes one statement."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from uuid import UUID, uuid4

import pytest
from sqlalchemy import Engine, event

from application.session_state.states import full_state, load_state
from domain.auth.model import EndReason, Session
from domain.session_state.model import (
    AccountStatus,
    Identity,
    Roles,
    Sessions,
    SubscriptionSummary,
    UserState,
    Versioned,
)
from domain.subscriptions.plans import Plan
from domain.users.model import User, UserStatus
from ports.unit_of_work import UnitOfWork
from tests.integration.backends import NOW, Backend

PLAN = Plan("pro", timedelta(days=30), 900, "EUR", frozenset({"reports"}))
DAY = timedelta(days=1)
SQL = pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


def composed(uow: UnitOfWork, user_id: UUID, now: datetime) -> UserState | None:
    """The composition load_state replaced, statement for statement."""
    user = uow.users.get(user_id)
    sessions = uow.sessions.get(user_id, now) if user is not None else None
    subscriptions = uow.subscriptions.of_user(user_id) if user is not None else None
    if user is None or sessions is None or subscriptions is None:
        return None
    return replace(full_state(user, sessions, now), subscription=subscriptions.summary())


def both(backend: Backend, user_id: UUID, now: datetime = NOW) -> UserState | None:
    """load_state's answer, checked equal to the old composition's in another unit of work,
    and the port's read equal to the repositories' (sessions included, before liveness is
    checked again in building the state)."""
    with backend.read_uow() as uow:
        old = composed(uow, user_id, now)
        user = uow.users.get(user_id)
        parts = (user, uow.sessions.get(user_id, now), uow.subscriptions.of_user(user_id))
    with backend.read_uow() as uow:
        source = uow.state_sources.get(user_id, now)
    with backend.read_uow() as uow:
        new = load_state(uow, user_id, now)
    assert new == old
    if source is None:
        assert user is None
    else:
        assert (source.user, source.sessions, source.subscriptions) == parts
        assert vars(source.user) == vars(user)  # User compares ids only
    return new


def add(backend: Backend, user: User) -> None:
    with backend.uow() as uow:
        uow.users.add(user)
        uow.commit()


def login(backend: Backend, user_id: UUID, at: datetime = NOW, lifetime: timedelta = 14 * DAY) -> Session:
    with backend.uow() as uow:
        sessions = uow.sessions.get(user_id, at, lock=True)
        session = sessions.open(uuid4().hex, at, lifetime)
        uow.sessions.save(sessions)
        uow.commit()
    return session


def logout(backend: Backend, session: Session, at: datetime = NOW) -> None:
    with backend.uow() as uow:
        sessions = uow.sessions.get(session.user_id, at, lock=True)
        sessions.end(sessions.sessions[session.id], at, EndReason.LOGOUT)
        uow.sessions.save(sessions)
        uow.commit()


def subscribe(backend: Backend, user_id: UUID, at: datetime = NOW, cancel: bool = False) -> UUID:
    with backend.uow() as uow:
        subs = uow.subscriptions.of_user(user_id, lock=True)
        subscription = subs.register(PLAN, at)
        if cancel:
            subs.cancel(subscription.id, at)
        uow.subscriptions.save(subs)
        uow.commit()
    return subscription.id


@contextmanager
def counting(engine: Engine) -> Iterator[list[str]]:
    """The statements the engine sends to the database while the block runs."""
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def engine_of(request: pytest.FixtureRequest, backend: Backend) -> Engine:
    return request.getfixturevalue(f"{backend.name}_engine")


# --- the same state as the composition it replaced ---------------------------------------------


def test_a_missing_user_has_no_state(backend, make_user):
    add(backend, make_user())
    assert both(backend, uuid4()) is None


def test_a_user_without_sessions_or_subscription(backend, make_user):
    user = make_user(roles=frozenset({"user", "admin"}), version=3)
    add(backend, user)
    assert both(backend, user.id) == UserState(
        user.id,
        identity=Versioned(3, Identity(user.email, AccountStatus.ACTIVE)),
        sessions=Versioned(0, Sessions({}, None)),
        roles=Versioned(3, Roles(frozenset({"user", "admin"}))),
        subscription=Versioned(0, None),
    )


def test_only_the_live_sessions_of_the_user_are_in_it(backend, make_user):
    user, other = make_user(), make_user()
    add(backend, user)
    add(backend, other)
    live = [login(backend, user.id, NOW - timedelta(hours=hours)) for hours in (3, 2, 1)]
    expired = login(backend, user.id, NOW - 2 * DAY, lifetime=DAY)
    at_now = login(backend, user.id, NOW - DAY, lifetime=DAY)  # expires at `now` exactly: over
    ended = login(backend, user.id)
    logout(backend, ended)
    login(backend, other.id)
    state = both(backend, user.id)
    assert set(state.sessions.value.live) == {s.id for s in live}
    assert {expired.id, at_now.id, ended.id}.isdisjoint(state.sessions.value.live)
    assert state.sessions.value.live[live[0].id].refresh_digest == live[0].refresh_digest
    assert state.sessions.value.live[live[0].id].expires_at == live[0].expires_at
    assert state.sessions.version == 7  # six logins and a logout
    assert state.sessions.value.last_login_at == NOW  # the ended session's login
    assert both(backend, user.id, NOW + 15 * DAY).sessions.value.live == {}  # later: all expired


def test_the_newest_subscription_is_summarised_at_the_subscriptions_version(backend, make_user):
    user, other = make_user(), make_user()
    add(backend, user)
    add(backend, other)
    subscribe(backend, user.id, NOW - DAY, cancel=True)
    newest = subscribe(backend, user.id)
    subscribe(backend, other.id, NOW + DAY)
    state = both(backend, user.id)
    assert state.subscription == Versioned(2, SubscriptionSummary("pro", "pending", None, newest))
    login(backend, user.id)
    login(backend, user.id)
    assert both(backend, user.id).subscription == state.subscription  # not repeated per session row


def test_a_disabled_user_is_read_disabled_and_a_deleted_one_not_at_all(backend, make_user):
    disabled, deleted = make_user(status=UserStatus.DISABLED), make_user()
    add(backend, disabled)
    add(backend, deleted)
    login(backend, deleted.id)
    subscribe(backend, deleted.id)
    assert both(backend, disabled.id).identity.value.status == AccountStatus.DISABLED
    with backend.uow() as uow:
        uow.users.remove(uow.users.get(deleted.id))
        uow.commit()
    assert both(backend, deleted.id) is None


def test_inside_a_unit_of_work_the_user_it_holds_is_the_one_read(backend, make_user):
    kept, removed = make_user(), make_user()
    add(backend, kept)
    add(backend, removed)
    with backend.uow() as uow:
        user = uow.users.get(kept.id)
        user.change_roles(frozenset({"user", "admin"}))
        uow.users.remove(uow.users.get(removed.id))
        state = load_state(uow, kept.id, NOW)
        assert state == composed(uow, kept.id, NOW)
        assert state.roles == Versioned(user.version, Roles(frozenset({"user", "admin"})))
        assert load_state(uow, removed.id, NOW) is None
        assert composed(uow, removed.id, NOW) is None


# --- one statement ---------------------------------------------------------------------------


@SQL
def test_load_state_is_one_statement(backend, make_user, request):
    user = make_user()
    add(backend, user)
    for hours in (2, 1):
        login(backend, user.id, NOW - timedelta(hours=hours))
    logout(backend, login(backend, user.id))
    subscribe(backend, user.id, NOW - DAY, cancel=True)
    subscribe(backend, user.id)

    def statements(load: Callable[[UnitOfWork, UUID, datetime], UserState | None]) -> list[str]:
        # Counted inside the unit of work: neither its BEGIN nor its ROLLBACK is the read's.
        with backend.read_uow() as uow, counting(engine_of(request, backend)) as executed:
            assert load(uow, user.id, NOW) is not None
        return executed

    assert len(statements(composed)) == 5  # the composition it replaced
    assert len(statements(load_state)) == 1
    with backend.read_uow() as uow, counting(engine_of(request, backend)) as executed:
        assert load_state(uow, uuid4(), NOW) is None
        assert len(executed) == 1
