"""Forgotten passwords: reset by a mailed single-use token."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from application.session_state.states import identity_of, sessions_of
from application.users.support import (
    issue_token,
    redeem,
    send_token_mail,
)
from domain.auth.model import EndReason
from domain.session_state.model import UserState
from domain.users import rules
from domain.users.commands import (
    ConfirmPasswordReset,
    RequestPasswordReset,
)
from domain.users.events import PasswordChanged, UserUpdated
from domain.users.tokens import TokenPurpose, retry_after

if TYPE_CHECKING:
    from ports.clock import Clock
    from ports.mail import Mailer
    from ports.password_hasher import PasswordHasher
    from ports.session_state import UserStateStore
    from ports.token_generator import TokenGenerator
    from ports.unit_of_work import ReadUnitOfWork, UnitOfWork


def request_password_reset(
    cmd: RequestPasswordReset,
    *,
    uow: UnitOfWork,
    read_uow: ReadUnitOfWork,
    tokens: TokenGenerator,
    clock: Clock,
    mailer: Mailer,
) -> None:
    """Mail a reset token if the account exists. The caller learns nothing either way, and at
    most one token per account is issued per reissue interval."""
    email, problems = rules.email_problems(cmd.email)
    if problems:  # no account can have it; same answer as for an unknown one
        return
    # Most requests under abuse name no account: the read cache's "not found" (invalidated when
    # the email is registered) answers those without a database transaction, let alone a lock.
    with read_uow:
        if read_uow.users.get_by_email(email) is None:
            return
    with uow:
        # The row lock serialises concurrent requests for one account, so the reissue interval
        # holds and only one token is ever live.
        user = uow.users.get_by_email(email, lock=True)
        now = clock.now()
        if user is None or retry_after(uow.tokens.last_issued_at(user.id, TokenPurpose.RESET_PASSWORD), now):
            return
        token = issue_token(uow, tokens, user, TokenPurpose.RESET_PASSWORD, now)
        uow.commit()
    send_token_mail(mailer, user.email, "reset_password", cmd.locale, token)


def confirm_password_reset(
    cmd: ConfirmPasswordReset,
    *,
    uow: UnitOfWork,
    hasher: PasswordHasher,
    tokens: TokenGenerator,
    clock: Clock,
    states: UserStateStore,
) -> None:
    """Every session ends: whoever knew the old password is logged out."""
    rules.check(password=cmd.password)
    digest = tokens.digest(cmd.token)
    with uow:  # a token that is not live costs no hash: looked at, given back by the rollback
        redeem(uow, digest, TokenPurpose.RESET_PASSWORD, clock.now())
    password_hash = hasher.hash(cmd.password)
    with uow:
        now = clock.now()
        user = redeem(uow, digest, TokenPurpose.RESET_PASSWORD, now)
        user.update(password_hash=password_hash)
        uow.tokens.revoke(user.id, TokenPurpose.RESET_PASSWORD, now)  # any other reset mail goes stale
        user.record(PasswordChanged(user_id=user.id, email=user.email, occurred_at=now, locale=cmd.locale))
        user.record(UserUpdated(user_id=user.id, email=user.email, occurred_at=now, locale=cmd.locale))
        sessions = uow.sessions.get(user.id, now, lock=True)
        if sessions is not None:
            sessions.end_all(now, EndReason.PASSWORD_CHANGED)
            uow.sessions.save(sessions)
        uow.commit()
        state = UserState(user.id, identity=identity_of(user))
        states.write(state if sessions is None else replace(state, sessions=sessions_of(sessions, now)))
