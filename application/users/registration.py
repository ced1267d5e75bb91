"""Registration and email confirmation."""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import uuid4

from application.users.support import (
    ALREADY_CONFIRMED,
    EMAIL_TAKEN,
    issue_token,
    load_user,
    redeem,
    send_mail,
    send_token_mail,
)
from domain.errors import AlreadyExists, Throttled
from domain.mail import Mail
from domain.users import rules
from domain.users.commands import (
    ConfirmUser,
    RegisterUser,
    ResendConfirmation,
)
from domain.users.events import UserRegistered, UserUpdated
from domain.users.model import User
from domain.users.tokens import TokenPurpose, retry_after

if TYPE_CHECKING:
    from ports.clock import Clock
    from ports.mail import Mailer
    from ports.password_hasher import PasswordHasher
    from ports.registration_limit import RegistrationLimit
    from ports.token_generator import TokenGenerator
    from ports.unit_of_work import UnitOfWork


def register_user(
    cmd: RegisterUser,
    *,
    uow: UnitOfWork,
    hasher: PasswordHasher,
    tokens: TokenGenerator,
    clock: Clock,
    mailer: Mailer,
    registrations: RegistrationLimit,
) -> User | None:
    """The new user; with `conceal_existing`, None when the email already had an account, whose
    owner is mailed that someone tried to register it (the same work and the same answer as a
    new account, so the answer tells nothing)."""
    email = rules.check(email=cmd.email, initials=cmd.initials, password=cmd.password)
    if wait := registrations.admit(cmd.client_address or "unknown"):
        raise Throttled(wait)  # before the hash: a flood must not cost a hash each
    password_hash = hasher.hash(cmd.password)  # slow on purpose: outside the transaction
    with uow:
        if uow.users.get_by_email(email) is not None:
            if not cmd.conceal_existing:
                raise AlreadyExists(EMAIL_TAKEN)
            user = None
        else:
            now = clock.now()
            user = User(
                id=uuid4(), email=email, initials=cmd.initials, password_hash=password_hash, created_at=now
            )
            user.record(UserRegistered(user_id=user.id, email=email, occurred_at=now, locale=cmd.locale))
            uow.users.add(user)
            token = issue_token(uow, tokens, user, TokenPurpose.CONFIRM_EMAIL, now)
            uow.commit()
    if user is None:
        send_mail(mailer, Mail(email, "already_registered", cmd.locale))
        return None
    send_token_mail(mailer, user.email, "confirm_email", cmd.locale, token)
    return user


def confirm_user(cmd: ConfirmUser, *, uow: UnitOfWork, tokens: TokenGenerator, clock: Clock) -> User:
    with uow:
        now = clock.now()
        user = redeem(uow, tokens.digest(cmd.token), TokenPurpose.CONFIRM_EMAIL, now)
        if user.confirm():
            user.record(UserUpdated(user_id=user.id, email=user.email, occurred_at=now, locale=cmd.locale))
        uow.commit()
    return user


def resend_confirmation(
    cmd: ResendConfirmation, *, uow: UnitOfWork, tokens: TokenGenerator, clock: Clock, mailer: Mailer
) -> None:
    with uow:
        user = load_user(uow, cmd.user_id, lock=True)  # serialises resends: one live token
        if user.confirmed:
            raise AlreadyExists(ALREADY_CONFIRMED)
        now = clock.now()
        if wait := retry_after(uow.tokens.last_issued_at(user.id, TokenPurpose.CONFIRM_EMAIL), now):
            raise Throttled(wait)
        token = issue_token(uow, tokens, user, TokenPurpose.CONFIRM_EMAIL, now)
        uow.commit()
    send_token_mail(mailer, user.email, "confirm_email", cmd.locale, token)
