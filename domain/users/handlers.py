"""Command, query and event handlers of the users context.

Handlers are plain functions: the message first, then the ports they need as keyword arguments
(bound once by the composition root). Mails that carry a secret token are sent by the handler
after commit, never through an event, so no token travels through an event log or broker.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import uuid4

from domain.mail import Mail
from domain.errors import AlreadyExists, InvalidInput, InvalidToken, NotFound, StaleVersion, Throttled
from domain.messages import Message
from domain.users import rules
from domain.users.commands import (
    ConfirmPasswordReset, ConfirmUser, DeleteUser, RegisterUser, RequestPasswordReset,
    ResendConfirmation, UpdateUser,
)
from domain.users.events import EmailChanged, PasswordChanged, UserDeleted, UserRegistered, UserUpdated
from domain.users.model import User
from domain.users.queries import GetUser, ListUsers, Page
from domain.users.tokens import AccountToken, TokenPurpose, retry_after

if TYPE_CHECKING:
    from ports.clock import Clock
    from ports.mail import Mailer
    from ports.security import PasswordHasher, TokenGenerator
    from ports.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

EMAIL_TAKEN = Message("A user with this email already exists.")
ALREADY_CONFIRMED = Message("The email address is already confirmed.")
OLD_PASSWORD_REQUIRED = Message("The current password is required to change the email or password.")
OLD_PASSWORD_WRONG = Message("The current password is incorrect.")
USER_NOT_FOUND = Message("The user was not found.")


def register_user(cmd: RegisterUser, *, uow: UnitOfWork, hasher: PasswordHasher,
                  tokens: TokenGenerator, clock: Clock, mailer: Mailer) -> User:
    email = rules.check(email=cmd.email, initials=cmd.initials, password=cmd.password)
    password_hash = hasher.hash(cmd.password)  # slow on purpose: outside the transaction
    with uow:
        if uow.users.get_by_email(email) is not None:
            raise AlreadyExists(EMAIL_TAKEN)
        now = clock.now()
        user = User(id=uuid4(), email=email, initials=cmd.initials,
                    password_hash=password_hash, created_at=now)
        user.record(UserRegistered(user_id=user.id, email=email, occurred_at=now, locale=cmd.locale))
        uow.users.add(user)
        token = _issue(uow, tokens, user, TokenPurpose.CONFIRM_EMAIL, now)
        uow.commit()
    _send(mailer, user.email, "confirm_email", cmd.locale, token)
    return user


def confirm_user(cmd: ConfirmUser, *, uow: UnitOfWork, tokens: TokenGenerator, clock: Clock) -> User:
    with uow:
        now = clock.now()
        user = _redeem(uow, tokens.digest(cmd.token), TokenPurpose.CONFIRM_EMAIL, now)
        if user.confirm():
            user.record(UserUpdated(user_id=user.id, email=user.email, occurred_at=now, locale=cmd.locale))
        uow.commit()
    return user


def resend_confirmation(cmd: ResendConfirmation, *, uow: UnitOfWork, tokens: TokenGenerator,
                        clock: Clock, mailer: Mailer) -> None:
    with uow:
        user = _get(uow, cmd.user_id)
        if user.confirmed:
            raise AlreadyExists(ALREADY_CONFIRMED)
        now = clock.now()
        if wait := retry_after(uow.tokens.last_issued_at(user.id, TokenPurpose.CONFIRM_EMAIL), now):
            raise Throttled(wait)
        token = _issue(uow, tokens, user, TokenPurpose.CONFIRM_EMAIL, now)
        uow.commit()
    _send(mailer, user.email, "confirm_email", cmd.locale, token)


def update_user(cmd: UpdateUser, *, uow: UnitOfWork, hasher: PasswordHasher,
                tokens: TokenGenerator, clock: Clock, mailer: Mailer) -> User:
    email = rules.check(email=cmd.email, initials=cmd.initials, password=cmd.password)
    with uow:
        user = _get(uow, cmd.user_id)
        _check_version(user, cmd.expected_versions)
        if (email is not None and email != user.email) or cmd.password is not None:
            _verify_old_password(hasher, user, cmd.old_password)
        if email is not None and email != user.email and uow.users.get_by_email(email) is not None:
            raise AlreadyExists(EMAIL_TAKEN)
        now = clock.now()
        previous = user.change_email(email) if email is not None else None
        renamed = cmd.initials is not None and user.change_initials(cmd.initials)
        if cmd.password is not None:
            user.change_password_hash(hasher.hash(cmd.password))
        token = None
        if previous is not None:
            token = _issue(uow, tokens, user, TokenPurpose.CONFIRM_EMAIL, now)
            user.record(EmailChanged(user_id=user.id, email=user.email, previous_email=previous,
                                     occurred_at=now, locale=cmd.locale))
        if cmd.password is not None:
            user.record(PasswordChanged(user_id=user.id, email=user.email, occurred_at=now, locale=cmd.locale))
        if previous is not None or renamed or cmd.password is not None:
            user.record(UserUpdated(user_id=user.id, email=user.email, previous_email=previous,
                                    occurred_at=now, locale=cmd.locale))
        uow.commit()
    if token is not None:
        _send(mailer, user.email, "confirm_email", cmd.locale, token)
    return user


def request_password_reset(cmd: RequestPasswordReset, *, uow: UnitOfWork, tokens: TokenGenerator,
                           clock: Clock, mailer: Mailer) -> None:
    """Mail a reset token if the account exists. The caller learns nothing either way, and at
    most one token per account is issued per reissue interval."""
    with uow:
        user = uow.users.get_by_email(rules.normalise_email(cmd.email))
        now = clock.now()
        if user is None or retry_after(uow.tokens.last_issued_at(user.id, TokenPurpose.RESET_PASSWORD), now):
            return
        token = _issue(uow, tokens, user, TokenPurpose.RESET_PASSWORD, now)
        uow.commit()
    _send(mailer, user.email, "reset_password", cmd.locale, token)


def confirm_password_reset(cmd: ConfirmPasswordReset, *, uow: UnitOfWork, hasher: PasswordHasher,
                           tokens: TokenGenerator, clock: Clock) -> None:
    rules.check(password=cmd.password)
    password_hash = hasher.hash(cmd.password)
    with uow:
        now = clock.now()
        user = _redeem(uow, tokens.digest(cmd.token), TokenPurpose.RESET_PASSWORD, now)
        user.change_password_hash(password_hash)
        user.record(PasswordChanged(user_id=user.id, email=user.email, occurred_at=now, locale=cmd.locale))
        user.record(UserUpdated(user_id=user.id, email=user.email, occurred_at=now, locale=cmd.locale))
        uow.commit()


def delete_user(cmd: DeleteUser, *, uow: UnitOfWork, clock: Clock) -> None:
    with uow:
        user = _get(uow, cmd.user_id)
        _check_version(user, cmd.expected_versions)
        user.record(UserDeleted(user_id=user.id, email=user.email, occurred_at=clock.now(), locale=cmd.locale))
        uow.users.remove(user)
        uow.commit()


def get_user(query: GetUser, *, uow: UnitOfWork) -> User:
    with uow:
        return _get(uow, query.user_id)


def list_users(query: ListUsers, *, uow: UnitOfWork) -> Page:
    filter = query.filter
    if filter.email is not None:
        filter = replace(filter, email=rules.normalise_email(filter.email))
    with uow:
        return uow.users.list(filter, query.page)


def notify_email_changed(event: EmailChanged, *, mailer: Mailer) -> None:
    mailer.send(Mail(event.previous_email, "email_changed", event.locale, {"email": event.email}))


def notify_password_changed(event: PasswordChanged, *, mailer: Mailer) -> None:
    mailer.send(Mail(event.email, "password_changed", event.locale, {}))


def _get(uow: UnitOfWork, user_id) -> User:
    user = uow.users.get(user_id)
    if user is None:
        raise NotFound(USER_NOT_FOUND)
    return user


def _check_version(user: User, expected: frozenset[int] | None) -> None:
    if expected is not None and user.version not in expected:
        raise StaleVersion()


def _redeem(uow: UnitOfWork, digest: str, purpose: TokenPurpose, now: datetime) -> User:
    token = uow.tokens.consume(digest, purpose, now)
    user = uow.users.get(token.user_id) if token is not None else None
    if user is None:
        raise InvalidToken()
    return user


def _issue(uow: UnitOfWork, tokens: TokenGenerator, user: User, purpose: TokenPurpose, now: datetime) -> str:
    """A new token for the purpose; only the newest of a purpose works (older mails go stale)."""
    uow.tokens.revoke(user.id, purpose, now)
    raw = tokens.new()
    uow.tokens.add(AccountToken.issue(tokens.digest(raw), user.id, purpose, now))
    return raw


def _verify_old_password(hasher: PasswordHasher, user: User, old_password: str | None) -> None:
    if old_password is None:
        raise InvalidInput({"old_password": [OLD_PASSWORD_REQUIRED]})
    if not hasher.verify(user.password_hash, old_password):
        raise InvalidInput({"old_password": [OLD_PASSWORD_WRONG]})


def _send(mailer: Mailer, to: str, template: str, locale: str, token: str) -> None:
    # The account change is committed; a mail outage must not turn it into an error. The user
    # can ask again (resend confirmation, request another reset).
    try:
        mailer.send(Mail(to, template, locale, {"token": token}))
    except Exception:
        log.exception("mail not sent", extra={"template": template})


COMMAND_HANDLERS = {
    RegisterUser: register_user,
    ConfirmUser: confirm_user,
    ResendConfirmation: resend_confirmation,
    UpdateUser: update_user,
    RequestPasswordReset: request_password_reset,
    ConfirmPasswordReset: confirm_password_reset,
    DeleteUser: delete_user,
}
QUERY_HANDLERS = {GetUser: get_user, ListUsers: list_users}
EVENT_HANDLERS = {
    EmailChanged: [notify_email_changed],
    PasswordChanged: [notify_password_changed],
}
