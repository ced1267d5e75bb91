"""Helpers shared by the users handlers: loading, version checks, tokens and their mails."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from domain.conditions import UNCONDITIONAL, VersionCondition
from domain.errors import Conflict, InvalidInput, InvalidToken, NotFound
from domain.mail import Mail
from domain.messages import Message
from domain.users.model import User, UserStatus
from domain.users.tokens import AccountToken, TokenPurpose

if TYPE_CHECKING:
    from ports.mail import Mailer
    from ports.password_hasher import PasswordHasher
    from ports.token_generator import TokenGenerator
    from ports.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

EMAIL_TAKEN = Message("A user with this email already exists.")
ALREADY_CONFIRMED = Message("The email address is already confirmed.")
OLD_PASSWORD_REQUIRED = Message("The current password is required to change the email or password.")
OLD_PASSWORD_WRONG = Message("The current password is incorrect.")
USER_NOT_FOUND = Message("The user was not found.")


LAST_ADMIN = Message(
    "This is the last active admin: make another account admin before removing its role or disabling it."
)


def load_keeping_an_admin(
    uow: UnitOfWork, user_id: UUID, *, could_remove: bool, condition: VersionCondition = UNCONDITIONAL
) -> User:
    """The user, locked; Conflict when `could_remove` (roles without "admin", disabling,
    deletion) and the user is the last active admin. Such commands count the admins one at a
    time (`count_active_admins(lock=True)`), so two of them cannot both count the other admin;
    a promotion, which does not wait for that, may have made the user an admin meanwhile, so
    a count that says "last" is taken again under the user's lock."""
    admins = uow.users.count_active_admins(lock=True) if could_remove else None
    user = load_user(uow, user_id, lock=True, condition=condition)
    removes = user.status == UserStatus.ACTIVE and "admin" in user.roles
    if admins is not None and removes and admins <= 1 and uow.users.count_active_admins(lock=True) <= 1:
        raise Conflict(LAST_ADMIN)
    return user


def load_user(
    uow: UnitOfWork, user_id: UUID, *, lock: bool = False, condition: VersionCondition = UNCONDITIONAL
) -> User:
    """The user, at a version `condition` allows: StaleVersion when it does not, NotFound when
    there is none (StaleVersion when the condition needed one)."""
    user = uow.users.get(user_id, lock=lock)
    if user is None:
        condition.check_missing()
        raise NotFound(USER_NOT_FOUND)
    condition.check(user.version)
    return user


def redeem(uow: UnitOfWork, digest: str, purpose: TokenPurpose, now: datetime) -> User:
    token = uow.tokens.consume(digest, purpose, now)
    user = uow.users.get(token.user_id) if token is not None else None
    if user is None:
        raise InvalidToken()
    return user


def issue_token(
    uow: UnitOfWork, tokens: TokenGenerator, user: User, purpose: TokenPurpose, now: datetime
) -> str:
    """A new token for the purpose; only the newest of a purpose works (older mails go stale)."""
    uow.tokens.revoke(user.id, purpose, now)
    raw = tokens.new()
    uow.tokens.add(AccountToken.issue(tokens.digest(raw), user.id, purpose, now))
    return raw


def verify_old_password(hasher: PasswordHasher, user: User, old_password: str | None) -> None:
    if old_password is None:
        raise InvalidInput({"old_password": [OLD_PASSWORD_REQUIRED]})
    if not hasher.verify(user.password_hash, old_password):
        raise InvalidInput({"old_password": [OLD_PASSWORD_WRONG]})


def send_token_mail(mailer: Mailer, to: str, template: str, locale: str, token: str) -> None:
    send_mail(mailer, Mail(to, template, locale, {"token": token}))


def send_mail(mailer: Mailer, mail: Mail) -> None:
    # The account change is committed; a mail outage must not turn it into an error. The user
    # can ask again (resend confirmation, request another reset).
    try:
        mailer.send(mail)
    except Exception:
        log.exception("mail not sent", extra={"template": mail.template})
