"""Events of the users context."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from domain.messages import Event


@dataclass(frozen=True, kw_only=True)
class UserRegistered(Event):
    user_id: UUID
    email: str


@dataclass(frozen=True, kw_only=True)
class UserUpdated(Event):
    """`previous_email_unknown`: the request named an email and changed nothing. It may repeat
    one that changed the email and whose cache writes were lost, and which address that one
    left behind is not known here: every lookup by email is to be invalidated."""

    user_id: UUID
    email: str
    previous_email: str | None = None
    previous_email_unknown: bool = False


@dataclass(frozen=True, kw_only=True)
class UserDeleted(Event):
    user_id: UUID
    email: str


@dataclass(frozen=True, kw_only=True)
class EmailChanged(Event):
    user_id: UUID
    email: str
    previous_email: str


@dataclass(frozen=True, kw_only=True)
class PasswordChanged(Event):
    user_id: UUID
    email: str


@dataclass(frozen=True, kw_only=True)
class UserRolesChanged(Event):
    """`version` is the user's version with these roles (it versions the roles group)."""

    user_id: UUID
    roles: frozenset[str]
    version: int
