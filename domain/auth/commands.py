"""Commands of the auth context. `client_address` and `user_agent` describe the request, for
the login-activity log and throttling."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from domain.messages import Command


@dataclass(frozen=True, kw_only=True)
class Login(Command):
    email: str
    password: str
    client_address: str | None = None
    user_agent: str | None = None
    device_token: str | None = None  # from an earlier login of this account on this device


@dataclass(frozen=True, kw_only=True)
class RefreshToken(Command):
    refresh_token: str
    client_address: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True, kw_only=True)
class Logout(Command):
    user_id: UUID
    session_id: UUID
    client_address: str | None = None
    user_agent: str | None = None
