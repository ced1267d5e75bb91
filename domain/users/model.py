"""The User aggregate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from domain.messages import Event

DEFAULT_ROLES = frozenset({"user"})


@dataclass(frozen=True)
class ProfileChange:
    """What `User.update` changed."""

    previous_email: str | None = None
    initials_changed: bool = False
    password_changed: bool = False

    @property
    def any(self) -> bool:
        return self.previous_email is not None or self.initials_changed or self.password_changed


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

    def update(
        self, *, email: str | None = None, initials: str | None = None, password_hash: str | None = None
    ) -> ProfileChange:
        """Apply the given values (None leaves a field as it is). A new email must be confirmed
        again. The version goes up once for the whole change, and only if something changed."""
        new_email = email if email is not None and email != self.email else None
        new_initials = initials if initials is not None and initials != self.initials else None
        change = ProfileChange(
            previous_email=self.email if new_email is not None else None,
            initials_changed=new_initials is not None,
            password_changed=password_hash is not None,
        )
        if new_email is not None:
            self.email, self.confirmed = new_email, False
        if new_initials is not None:
            self.initials = new_initials
        if password_hash is not None:
            self.password_hash = password_hash
        if change.any:
            self._changed()
        return change

    def change_roles(self, roles: frozenset[str]) -> bool:
        """Replace the roles; False if they are the same (nothing changes)."""
        if roles == self.roles:
            return False
        self.roles = frozenset(roles)
        self._changed()
        return True

    def change_status(self, status: UserStatus) -> bool:
        if status == self.status:
            return False
        self.status = status
        self._changed()
        return True
