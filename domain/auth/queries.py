"""Read-side messages and results of the auth context."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from domain.session_state.model import SubscriptionSummary
from domain.users.queries import PageRequest


@dataclass(frozen=True)
class Authenticate:
    """Check an access token against the user's current state."""

    access_token: str


@dataclass(frozen=True)
class Principal:
    """Who an authenticated request comes from, as UserState (or the database) says now."""

    user_id: UUID
    session_id: UUID
    email: str
    roles: frozenset[str]
    last_login_at: datetime | None
    subscription: SubscriptionSummary | None = None

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    def may_access(self, user_id: UUID) -> bool:
        """Users read and change themselves only; admins anyone."""
        return self.user_id == user_id or self.is_admin


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int  # seconds the access token lives
    user_id: UUID
    session_id: UUID
    device_token: str | None = None  # a login's: send it with the next login from this device


@dataclass(frozen=True)
class GetLoginActivity:
    user_id: UUID
    page: PageRequest
