"""Building UserState groups from the source of truth (the owners' side of DESIGN §3)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from domain.auth.model import UserSessions
from domain.session_state.model import (
    TOMBSTONE,
    AccountStatus,
    Identity,
    LiveSession,
    Roles,
    Sessions,
    UserState,
    Versioned,
)
from domain.users.model import User

if TYPE_CHECKING:
    from ports.unit_of_work import UnitOfWork


def identity_of(user: User) -> Versioned[Identity]:
    return Versioned(user.version, Identity(user.email, AccountStatus(user.status.value)))


def roles_of(user: User) -> Versioned[Roles]:
    return Versioned(user.version, Roles(frozenset(user.roles)))


def sessions_of(sessions: UserSessions, now: datetime) -> Versioned[Sessions]:
    live = {s.id: LiveSession(s.refresh_digest, s.expires_at) for s in sessions.live(now)}
    return Versioned(sessions.version, Sessions(live, sessions.last_login_at))


def full_state(user: User, sessions: UserSessions, now: datetime) -> UserState:
    """Every group the auth context owns, as one transaction read them."""
    return UserState(
        user.id, identity=identity_of(user), sessions=sessions_of(sessions, now), roles=roles_of(user)
    )


def deleted_state(user_id: UUID, email: str) -> UserState:
    """A tombstone: versions no writer can beat, so a slow writer cannot revive the account."""
    return UserState(
        user_id,
        identity=Versioned(TOMBSTONE, Identity(email, AccountStatus.DELETED)),
        sessions=Versioned(TOMBSTONE, Sessions()),
        roles=Versioned(TOMBSTONE, Roles(frozenset())),
        subscription=Versioned(TOMBSTONE, None),
    )


def load_state(uow: UnitOfWork, user_id: UUID, now: datetime) -> UserState | None:
    """Every group, rebuilt from the database (inside the caller's unit of work) to fill an
    entry that is missing or lacks a group; None when the user does not exist. Written back
    with the same compare-and-set, it can only fill in, never overwrite a newer group."""
    source = uow.state_sources.get(user_id, now)  # one read, one snapshot: the groups agree
    if source is None:
        return None
    state = full_state(source.user, source.sessions, now)
    return replace(state, subscription=source.subscriptions.summary())
