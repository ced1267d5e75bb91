"""UserState: the per-user session-state cache entry (DESIGN §3), in field groups.

Each group is written whole, alone and atomically, by its one owner, and carries the version of
the source data it was built from. A store refuses a group whose version is older than the one
it holds (compare-and-set), so a slow writer that read the database before a newer change
committed can never overwrite that change, and writers of different groups never erase each
other's fields.

| group        | fields                     | version                    | owners                     |
|--------------|----------------------------|----------------------------|----------------------------|
| identity     | email, status              | the user's version         | auth and users handlers    |
| sessions     | live sessions, last login  | the user's session version | Login, Refresh, Logout, ...|
| roles        | roles                      | the user's version         | Login/Refresh, roles change|
| subscription | subscription summary       | the user's subscriptions   | RegisterSubscription, the  |
|              |                            | version                    | status-changed consumer    |

Identity and sessions form DESIGN's "identity + session" group of one owner; they are stored as
two compare-and-set groups because their versions come from two counters.

Besides the owners, an authenticated request that finds the entry missing, or lacking a group,
fills it in from the database (`states.load_state`) at the database's versions: the
compare-and-set lets such a fill add what is absent, never replace something newer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Generic, TypeVar
from uuid import UUID

T_co = TypeVar("T_co", covariant=True)
F = TypeVar("F", bound=Callable[..., object])

# Entry lifetime in the store: a read slides the expiry to 30 minutes from now, never past
# 120 minutes after the entry was created.
SLIDING_TTL = 30 * 60
ABSOLUTE_TTL = 120 * 60
# The version of a deleted user's groups: newer than any real one, so nothing revives them.
TOMBSTONE = 2**62


class StateUnavailable(Exception):
    """The state store could not be reached; the caller falls back to the database."""


class Group(StrEnum):
    IDENTITY = "identity"
    SESSIONS = "sessions"
    ROLES = "roles"
    SUBSCRIPTION = "subscription"


class AccountStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"
    DELETED = "deleted"


@dataclass(frozen=True)
class Versioned(Generic[T_co]):
    version: int
    value: T_co


@dataclass(frozen=True)
class Identity:
    email: str
    status: AccountStatus


@dataclass(frozen=True)
class LiveSession:
    refresh_digest: str
    expires_at: datetime


@dataclass(frozen=True)
class Sessions:
    live: Mapping[UUID, LiveSession] = field(default_factory=dict)
    last_login_at: datetime | None = None


@dataclass(frozen=True)
class Roles:
    roles: frozenset[str]


@dataclass(frozen=True)
class SubscriptionSummary:
    plan: str
    status: str
    current_period_end: datetime | None = None
    subscription_id: UUID | None = None


@dataclass(frozen=True)
class UserState:
    """Some or all groups of one user's state; a group left None is not written (or, read
    back, not stored)."""

    user_id: UUID
    identity: Versioned[Identity] | None = None
    sessions: Versioned[Sessions] | None = None
    roles: Versioned[Roles] | None = None
    subscription: Versioned[SubscriptionSummary | None] | None = None

    def groups(self) -> dict[Group, Versioned[object]]:
        present = {
            Group.IDENTITY: self.identity,
            Group.SESSIONS: self.sessions,
            Group.ROLES: self.roles,
            Group.SUBSCRIPTION: self.subscription,
        }
        return {group: value for group, value in present.items() if value is not None}

    @property
    def complete(self) -> bool:
        """Holds every group (a request's principal carries all of them)."""
        # Checked on every authenticated request: no dict built for it.
        return None not in (self.identity, self.sessions, self.roles, self.subscription)


def writes(*groups: Group) -> Callable[[F], F]:
    """Declare the groups an event consumer owns (DESIGN §3). The composition root hands each
    consumer a store that refuses a write of any other group; a consumer that declares none
    may only read."""

    def declare(consumer: F) -> F:
        consumer.state_groups = frozenset(groups)  # type: ignore[attr-defined]
        return consumer

    return declare


def owned_groups(consumer: Callable[..., object]) -> frozenset[Group]:
    return getattr(consumer, "state_groups", frozenset())
