"""Events of the auth context."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from domain.messages import Event


@dataclass(frozen=True, kw_only=True)
class UserLoggedIn(Event):
    """A session began (kind "login") or its refresh token was rotated (kind "refresh")."""

    user_id: UUID
    session_id: UUID
    kind: str
    client_address: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True, kw_only=True)
class UserLoggedOut(Event):
    """A session ended: logout, or a reused refresh token (kind "refresh_reused")."""

    user_id: UUID
    session_id: UUID
    kind: str
    client_address: str | None = None
    user_agent: str | None = None
