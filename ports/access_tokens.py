"""Short-lived signed access tokens and their claims."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID


@dataclass(frozen=True)
class AccessClaims:
    user_id: UUID  # sub
    session_id: UUID  # sid
    token_id: str  # jti
    issued_at: datetime  # iat
    expires_at: datetime  # exp


class AccessTokens(Protocol):
    """Short-lived signed access tokens."""

    def issue(self, user_id: UUID, session_id: UUID, now: datetime) -> tuple[str, AccessClaims]: ...

    def decode(self, token: str, now: datetime) -> AccessClaims | None:
        """The claims of a genuine, unexpired token; None for anything else."""
        ...
