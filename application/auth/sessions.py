"""Login, refresh and logout. Each handler records its event, commits, and writes its UserState
groups inside the unit of work; the event is published on leaving it: by the time any consumer
runs, or the command returns, the state already says what the database says."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace
from functools import lru_cache
from typing import TYPE_CHECKING, TypeVar

from application.session_state.states import full_state, sessions_of
from domain.auth.commands import Login, Logout, RefreshToken
from domain.auth.events import UserLoggedIn, UserLoggedOut
from domain.auth.model import EndReason, Lifetimes, Session, UserSessions
from domain.auth.queries import TokenPair
from domain.errors import InvalidCredentials, Throttled, Unauthenticated
from domain.messages import Message
from domain.session_state.model import UserState
from domain.users import rules
from domain.users.model import User, UserStatus

if TYPE_CHECKING:
    from datetime import datetime
    from uuid import UUID

    from ports.access_tokens import AccessTokens
    from ports.clock import Clock
    from ports.device_tokens import DeviceTokens
    from ports.login_throttle import LoginThrottle
    from ports.password_hasher import PasswordHasher
    from ports.session_state import UserStateStore
    from ports.token_generator import TokenGenerator
    from ports.unit_of_work import UnitOfWork

log = logging.getLogger("user_service.auth")

REFRESH_INVALID = Message("The refresh token is invalid or expired.")
REFRESH_REUSED = Message("The refresh token was already used; the session has been ended.")

SessionEvent = TypeVar("SessionEvent", UserLoggedIn, UserLoggedOut)


@lru_cache(maxsize=4)
def _decoy_hash(hasher: PasswordHasher) -> str:
    """A hash to verify against when no account has the email, so that an unknown email costs
    the same time as a wrong password."""
    return hasher.hash("decoy password that never matches 0A")


def throttle_key(email: str) -> str:
    """The throttle's key for an account: derived from the email, whether or not it exists."""
    return hashlib.sha256(email.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def login(
    cmd: Login,
    *,
    uow: UnitOfWork,
    hasher: PasswordHasher,
    tokens: TokenGenerator,
    access: AccessTokens,
    states: UserStateStore,
    throttle: LoginThrottle,
    devices: DeviceTokens,
    clock: Clock,
    lifetimes: Lifetimes,
) -> TokenPair:
    """A device token of this account (from an earlier login) puts the attempt under that
    device's own limit, which no one else's failures fill; every successful login returns one."""
    email = rules.normalise_email(cmd.email)
    account, client = throttle_key(email), cmd.client_address or "unknown"
    device = devices.device_of(cmd.device_token, account) if cmd.device_token else None
    if wait := throttle.retry_after(account, client, device):
        raise Throttled(wait)
    with uow:
        found = uow.users.get_by_email(email)
    # Always one argon2 verification, account or not: the answer's timing reveals nothing.
    verified = hasher.verify(found.password_hash if found else _decoy_hash(hasher), cmd.password)
    if found is None or not verified or found.status != UserStatus.ACTIVE:
        throttle.failed(account, client, device)
        raise InvalidCredentials()
    throttle.succeeded(account, client, device)
    refresh = tokens.new()
    now = clock.now()
    with uow:
        user, sessions = _locked(uow, found.id, now)
        if user is None or sessions is None or user.status != UserStatus.ACTIVE:
            raise InvalidCredentials()  # deleted or disabled since the password was checked
        session = sessions.open(tokens.digest(refresh), now, lifetimes.refresh)
        uow.sessions.save(sessions)
        uow.record(_event(UserLoggedIn, cmd, session, "login", now))
        uow.commit()
        states.write(full_state(user, sessions, now))
    device_token = cmd.device_token if device is not None else devices.issue(account)
    return replace(_pair(access, user, session, refresh, now, lifetimes), device_token=device_token)


def refresh_token(
    cmd: RefreshToken,
    *,
    uow: UnitOfWork,
    tokens: TokenGenerator,
    access: AccessTokens,
    states: UserStateStore,
    clock: Clock,
    lifetimes: Lifetimes,
) -> TokenPair:
    """Rotate the refresh token. Presenting one that was already rotated away ends the
    session (the family): whoever holds the current one, the thief or the owner, must log in."""
    digest = tokens.digest(cmd.refresh_token)
    refresh = tokens.new()
    now = clock.now()
    with uow:
        record = uow.sessions.find_refresh(digest)
        if record is None:
            raise Unauthenticated(REFRESH_INVALID)
        user, sessions = _locked(uow, record.user_id, now)
        session = sessions.get(record.session_id, now) if sessions is not None else None
        if user is None or sessions is None or session is None or user.status != UserStatus.ACTIVE:
            raise Unauthenticated(REFRESH_INVALID)
        reused = session.refresh_digest != digest
        if reused:
            sessions.end(session, now, EndReason.REFRESH_REUSED)
            uow.record(_event(UserLoggedOut, cmd, session, EndReason.REFRESH_REUSED.value, now))
        else:
            sessions.rotate(session, tokens.digest(refresh), now, lifetimes.refresh)
            uow.record(_event(UserLoggedIn, cmd, session, "refresh", now))
        uow.sessions.save(sessions)
        uow.commit()
        states.write(full_state(user, sessions, now))
        if reused:
            log.warning(
                "operation=auth.refresh_reused user=%s session=%s: session ended", user.id, session.id
            )
            # Raised after the commit: leaving the block still publishes UserLoggedOut.
            raise Unauthenticated(REFRESH_REUSED)
    return _pair(access, user, session, refresh, now, lifetimes)


def logout(cmd: Logout, *, uow: UnitOfWork, states: UserStateStore, clock: Clock) -> None:
    """End the session; ending one that already ended changes nothing."""
    now = clock.now()
    with uow:
        sessions = uow.sessions.get(cmd.user_id, now, lock=True)
        session = sessions.get(cmd.session_id, now) if sessions is not None else None
        if sessions is None or session is None:
            # Ended already, perhaps by a logout answered 503 whose state write has not landed
            # (app.acknowledgement): written again, so that this answer holds on every worker.
            if sessions is not None:
                states.write(UserState(cmd.user_id, sessions=sessions_of(sessions, now)))
            return
        sessions.end(session, now, EndReason.LOGOUT)
        uow.sessions.save(sessions)
        uow.record(_event(UserLoggedOut, cmd, session, EndReason.LOGOUT.value, now))
        uow.commit()
        states.write(UserState(cmd.user_id, sessions=sessions_of(sessions, now)))


def _locked(uow: UnitOfWork, user_id: UUID, now: datetime) -> tuple[User | None, UserSessions | None]:
    user = uow.users.get(user_id, lock=True)
    return user, (uow.sessions.get(user_id, now, lock=True) if user is not None else None)


def _event(
    kind: type[SessionEvent], cmd: Login | RefreshToken | Logout, session: Session, name: str, now: datetime
) -> SessionEvent:
    return kind(
        user_id=session.user_id,
        session_id=session.id,
        kind=name,
        client_address=cmd.client_address,
        user_agent=cmd.user_agent,
        occurred_at=now,
        locale=cmd.locale,
    )


def _pair(
    access: AccessTokens, user: User, session: Session, refresh: str, now: datetime, lifetimes: Lifetimes
) -> TokenPair:
    token, claims = access.issue(user.id, session.id, now)
    expires_in = int((claims.expires_at - claims.issued_at).total_seconds())
    return TokenPair(token, refresh, expires_in, user.id, session.id)
