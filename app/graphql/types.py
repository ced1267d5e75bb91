"""The GraphQL types: the REST representations, with each versioned resource's ETag as a field
(an `ifMatch` takes it, and REST's If-Match takes it too)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import strawberry

from app.http.conditional import etag_of
from domain.auth.model import LoginActivity
from domain.auth.queries import Principal
from domain.subscriptions.model import Subscription as SubscriptionModel
from domain.users.model import User as UserModel


@strawberry.type(description="A user account")
class User:
    id: UUID
    email: str
    initials: str
    confirmed: bool
    roles: list[str]
    etag: str = strawberry.field(description='Its entity-tag, as REST\'s ETag header: "r1-…-3"')

    @classmethod
    def of(cls, user: UserModel) -> User:
        return cls(
            id=user.id,
            email=user.email,
            initials=user.initials,
            confirmed=user.confirmed,
            roles=sorted(user.roles),
            etag=f'"{etag_of(user.id, user.version)}"',
        )


@strawberry.type(description="A page of users, in the order of registration")
class UserPage:
    items: list[User]
    page: int
    page_size: int
    total: int


@strawberry.type(name="PlanSubscription", description="A user's subscription to a plan")
class Subscription:
    id: UUID
    user_id: UUID
    plan: str
    status: str = strawberry.field(description="pending, active, expired or cancelled")
    created_at: datetime
    current_period_start: datetime | None
    current_period_end: datetime | None
    activated_at: datetime | None
    cancelled_at: datetime | None
    etag: str

    @classmethod
    def of(cls, subscription: SubscriptionModel) -> Subscription:
        return cls(
            id=subscription.id,
            user_id=subscription.user_id,
            plan=subscription.plan,
            status=subscription.status.value,
            created_at=subscription.created_at,
            current_period_start=subscription.current_period_start,
            current_period_end=subscription.current_period_end,
            activated_at=subscription.activated_at,
            cancelled_at=subscription.cancelled_at,
            etag=f'"{etag_of(subscription.id, subscription.version)}"',
        )


@strawberry.type(description="The subscription a session sees, from its session state")
class SubscriptionSummary:
    id: UUID | None
    plan: str
    status: str
    current_period_end: datetime | None


@strawberry.type(description="The signed-in session, as its session state says now")
class Me:
    id: UUID
    email: str
    roles: list[str]
    session_id: UUID
    last_login_at: datetime | None
    subscription: SubscriptionSummary | None

    @classmethod
    def of(cls, principal: Principal) -> Me:
        summary = principal.subscription
        return cls(
            id=principal.user_id,
            email=principal.email,
            roles=sorted(principal.roles),
            session_id=principal.session_id,
            last_login_at=principal.last_login_at,
            subscription=None
            if summary is None
            else SubscriptionSummary(
                id=summary.subscription_id,
                plan=summary.plan,
                status=summary.status,
                current_period_end=summary.current_period_end,
            ),
        )


@strawberry.type
class Activity:
    occurred_at: datetime
    kind: str = strawberry.field(description="login, refresh, logout or refresh_reused")
    client_address: str | None
    user_agent: str | None

    @classmethod
    def of(cls, activity: LoginActivity) -> Activity:
        return cls(
            occurred_at=activity.occurred_at,
            kind=activity.kind,
            client_address=activity.client_address,
            user_agent=activity.user_agent,
        )


@strawberry.type(description="A page of a user's logins, refreshes and logouts, newest first")
class ActivityPage:
    items: list[Activity]
    page: int
    page_size: int
    total: int


@strawberry.input
class UserFilter:
    email: str | None = None
    confirmed: bool | None = None


@strawberry.input
class CreateUserInput:
    email: str
    initials: str
    password: str


@strawberry.input(description="Fields to change; an email or password comes with oldPassword")
class UpdateUserInput:
    email: str | None = None
    initials: str | None = None
    password: str | None = None
    old_password: str | None = None
