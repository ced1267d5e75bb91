"""Single-purpose account tokens (email confirmation, password reset).

Only a digest of a token is stored; the raw value exists in the mail sent to the user.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID


class TokenPurpose(StrEnum):
    CONFIRM_EMAIL = "confirm_email"
    RESET_PASSWORD = "reset_password"


LIFETIME = {
    TokenPurpose.CONFIRM_EMAIL: timedelta(hours=24),
    TokenPurpose.RESET_PASSWORD: timedelta(hours=1),
}
# A new token of the same purpose is not issued more often than this (mail flood protection).
REISSUE_INTERVAL = timedelta(seconds=60)


@dataclass
class AccountToken:
    digest: str
    user_id: UUID
    purpose: TokenPurpose
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None

    @classmethod
    def issue(cls, digest: str, user_id: UUID, purpose: TokenPurpose, now: datetime) -> AccountToken:
        return cls(digest, user_id, purpose, now, now + LIFETIME[purpose])

    def usable(self, now: datetime) -> bool:
        return self.used_at is None and now < self.expires_at


def retry_after(last_issued_at: datetime | None, now: datetime) -> int:
    """Seconds until another token may be issued; 0 when it may be issued now."""
    if last_issued_at is None:
        return 0
    wait = (last_issued_at + REISSUE_INTERVAL - now).total_seconds()
    return max(0, int(wait + 0.999))
