"""The User aggregate."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from domain.messages import Event

DEFAULT_ROLES = frozenset({"user"})


class UserStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


class User:
    """A user account. Every change increments `version`, which backs ETags and optimistic
    locking; events raised by a change wait in `events` until the unit of work publishes them.
    Field rules are checked by the handlers (domain.users.rules) before a value reaches here.
    """

    def __init__(
        self,
        *,
        id: UUID,
        email: str,
        initials: str,
        password_hash: str,
        created_at: datetime,
        confirmed: bool = False,
        roles: frozenset[str] = DEFAULT_ROLES,
        status: UserStatus = UserStatus.ACTIVE,
        version: int = 1,
    ) -> None:
        self.id = id
        self.email = email
        self.initials = initials
        self.password_hash = password_hash
        self.created_at = created_at
        self.confirmed = confirmed
        self.roles = frozenset(roles)
        self.status = UserStatus(status)
        self.version = version
        self.events: list[Event] = []

    def __repr__(self) -> str:
        return f"<User {self.id} v{self.version}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, User) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def record(self, event: Event) -> None:
        self.events.append(event)

    def _changed(self) -> None:
        self.version += 1

    def confirm(self) -> bool:
        """Mark the email confirmed; False if it already was (nothing changes)."""
        if self.confirmed:
            return False
        self.confirmed = True
        self._changed()
        return True

    def change_email(self, email: str) -> str | None:
        """Set a new email, which must be confirmed again; returns the previous one if changed."""
        if email == self.email:
            return None
        previous, self.email, self.confirmed = self.email, email, False
        self._changed()
        return previous

    def change_initials(self, initials: str) -> bool:
        if initials == self.initials:
            return False
        self.initials = initials
        self._changed()
        return True

    def change_password_hash(self, password_hash: str) -> None:
        self.password_hash = password_hash
        self._changed()
