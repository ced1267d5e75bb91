"""Commands of the users context."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from domain.conditions import UNCONDITIONAL, VersionCondition
from domain.messages import Command


@dataclass(frozen=True, kw_only=True)
class RegisterUser(Command):
    email: str
    initials: str
    password: str
    client_address: str | None = None  # what the registration limit counts by
    # The answer does not say whether the email had an account: its owner is mailed instead.
    conceal_existing: bool = False


@dataclass(frozen=True, kw_only=True)
class ConfirmUser(Command):
    token: str


@dataclass(frozen=True, kw_only=True)
class ResendConfirmation(Command):
    user_id: UUID


@dataclass(frozen=True, kw_only=True)
class UpdateUser(Command):
    """Change any of email, initials, password. `old_password` is required to change email or
    password; `condition` (from If-Match and If-None-Match) makes the update conditional on
    the current version."""

    user_id: UUID
    email: str | None = None
    initials: str | None = None
    password: str | None = None
    old_password: str | None = None
    condition: VersionCondition = UNCONDITIONAL
    # The session the change is made from: a password change ends every other one.
    session_id: UUID | None = None


@dataclass(frozen=True, kw_only=True)
class RequestPasswordReset(Command):
    email: str


@dataclass(frozen=True, kw_only=True)
class ConfirmPasswordReset(Command):
    token: str
    password: str


@dataclass(frozen=True, kw_only=True)
class DeleteUser(Command):
    user_id: UUID
    condition: VersionCondition = UNCONDITIONAL


@dataclass(frozen=True, kw_only=True)
class ChangeUserRoles(Command):
    user_id: UUID
    roles: frozenset[str]


@dataclass(frozen=True, kw_only=True)
class ChangeUserStatus(Command):
    """Disable an account (its sessions end at once) or enable it again."""

    user_id: UUID
    status: str
