"""Persistence ports of the users context."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol
from uuid import UUID

from domain.users.model import User
from domain.users.queries import Page, PageRequest, UserFilter
from domain.users.tokens import AccountToken, TokenPurpose


class UserRepository(Protocol):
    """Users of one unit of work. Changes to aggregates it returned are written on commit;
    a write loses to a concurrent one (same id, newer version) with ConcurrentUpdate, and an
    email already taken raises AlreadyExists."""

    def add(self, user: User) -> None: ...

    def get(self, user_id: UUID, *, lock: bool = False) -> User | None:
        """The user, or None. `lock=True` also holds the user's row until the unit of work
        ends (SELECT ... FOR UPDATE), serialising the commands that change one user."""
        ...

    def get_by_email(self, email: str, *, lock: bool = False) -> User | None: ...

    def remove(self, user: User) -> None: ...

    def list(self, filter: UserFilter, page: PageRequest) -> Page[User]: ...


class AccountTokenRepository(Protocol):
    """Confirmation and reset tokens, looked up by digest; removed with their user."""

    def add(self, token: AccountToken) -> None: ...

    def consume(self, digest: str, purpose: TokenPurpose, now: datetime) -> AccountToken | None:
        """Mark the token used and return it, if it exists and is usable; otherwise None.
        Of two concurrent consumers of one token at most one succeeds."""
        ...

    def revoke(self, user_id: UUID, purpose: TokenPurpose, now: datetime) -> None:
        """Make every unused token of the purpose unusable (e.g. after an email change)."""
        ...

    def last_issued_at(self, user_id: UUID, purpose: TokenPurpose) -> datetime | None: ...
