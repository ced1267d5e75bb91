"""Repositories: the aggregates' persistence, used inside a unit of work."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from domain.auth.model import LoginActivity, RefreshTokenRecord, UserSessions
from domain.subscriptions.model import Payment, Subscription, UserSubscriptions
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

    def count_active_admins(self, *, lock: bool = False) -> int:
        """Active accounts with the admin role. `lock=True` makes every other such count wait
        until this unit of work ends, so that two commands each removing an admin cannot both
        count the other one."""
        ...


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


class SessionRepository(Protocol):
    """The sessions of users, in one unit of work."""

    def get(self, user_id: UUID, now: datetime, *, lock: bool = False) -> UserSessions | None:
        """The user's live sessions, or None when there is no such user. `lock=True` holds the
        user's row until the unit of work ends, serialising every change to one user."""
        ...

    def find_refresh(self, digest: str) -> RefreshTokenRecord | None:
        """The session a refresh token was issued to, whether or not it is still current."""
        ...

    def save(self, sessions: UserSessions) -> None:
        """Write the changes and increment `sessions.version`; raises ConcurrentUpdate when the
        stored version is no longer the one loaded."""
        ...


class LoginActivityRepository(Protocol):
    def add(self, activity: LoginActivity) -> None:
        """Record it, unless a row with its id exists (a redelivered event)."""
        ...

    def list(self, user_id: UUID, page: PageRequest) -> Page[LoginActivity]:
        """A page of the user's activity, newest first."""
        ...


class SubscriptionRepository(Protocol):
    """Subscriptions and their payments, in one unit of work."""

    def get(self, subscription_id: UUID) -> Subscription | None: ...

    def of_user(self, user_id: UUID, *, lock: bool = False) -> UserSubscriptions | None:
        """The user's newest subscription and subscriptions version; None when there is no such
        user. `lock=True` holds the user's row until the unit of work ends, serialising every
        change to one user's subscriptions."""
        ...

    def save(self, subscriptions: UserSubscriptions) -> None:
        """Write the added or changed subscription and the applied payments, and increment
        `subscriptions.version`; raises ConcurrentUpdate when the stored version is no longer
        the one loaded."""
        ...

    def add_payment(self, payment: Payment) -> None:
        """Record it; a payment with the same reference makes the commit raise AlreadyExists."""
        ...

    def get_payment(self, payment_id: UUID) -> Payment | None: ...

    def find_payment(self, reference: str) -> Payment | None: ...

    def ended_periods(self, now: datetime, limit: int) -> list[UUID]:
        """Users whose subscription is active with its period over at `now`."""
        ...

    def unapplied_payments(self, limit: int) -> list[tuple[Payment, UUID]]:
        """Payments not yet applied to a subscription that is still pending or active, oldest
        first, each with its user's id."""
        ...


@dataclass(frozen=True)
class UserStateSource:
    """What a user's UserState is built from, read together: the user, their live sessions and
    their newest subscription, with the versions of both."""

    user: User
    sessions: UserSessions
    subscriptions: UserSubscriptions


class UserStateSourceRepository(Protocol):
    """The read behind a session-state fill (an authenticated request that missed the store)."""

    def get(self, user_id: UUID, now: datetime) -> UserStateSource | None:
        """The user, sessions and subscriptions as `users.get(user_id)`, `sessions.get(user_id,
        now)` and `subscriptions.of_user(user_id)` return them in this unit of work, but read in
        one go (one statement, one snapshot, on SQL); None when there is no such user. Locks
        nothing: a reader's fill, never the start of a change."""
        ...
