"""The queries: each one a REST read's query handler, with its access check."""

from __future__ import annotations

from uuid import UUID

import strawberry
from flask import current_app

from app.api import bus
from app.api.schemas import PageArgs, UserListArgs
from app.graphql import types
from app.graphql.answers import never_store
from app.graphql.arguments import load
from app.http.auth import authorize, current_principal, own, require_admin
from app.http.hot_path import user_read
from domain.auth.queries import GetLoginActivity
from domain.subscriptions.queries import GetSubscription
from domain.users.queries import GetUser, ListUsers, PageRequest, UserFilter


@strawberry.type
class Query:
    @strawberry.field(description="A user (the user or an admin), from the read cache")
    def user(self, id: UUID) -> types.User:
        container = current_app.extensions["container"]
        key = container.user_entries().key(id)
        with user_read(container.caching.read_ahead(), key, container.storage.shared_reads()):
            authorize(id)
            user = bus().handle(GetUser(id))
        return types.User.of(user)

    @strawberry.field(description="Users, filtered by email and confirmation, a page at a time (admins)")
    def users(
        self, filter: types.UserFilter | None = None, page: int = 1, page_size: int = 20
    ) -> types.UserPage:
        require_admin()
        given = filter or types.UserFilter()
        args = load(
            UserListArgs(), page=page, page_size=page_size, email=given.email, confirmed=given.confirmed
        )
        request = PageRequest(args["page"], args["page_size"])
        result = bus().handle(ListUsers(UserFilter(args.get("email"), args.get("confirmed")), request))
        items = [types.User.of(user) for user in result.items]
        return types.UserPage(items=items, page=request.page, page_size=request.size, total=result.total)

    @strawberry.field(description="The signed-in session, from its session state")
    def me(self) -> types.Me:
        never_store()
        return types.Me.of(current_principal())

    @strawberry.field(description="A subscription (its user or an admin)")
    def subscription(self, id: UUID) -> types.Subscription:
        return types.Subscription.of(bus().handle(GetSubscription(id, own())))

    @strawberry.field(
        description="Logins, refreshes and logouts of a user, newest first (the user or an admin)"
    )
    def activity(self, user_id: UUID, page: int = 1, page_size: int = 20) -> types.ActivityPage:
        authorize(user_id)
        args = load(PageArgs(), page=page, page_size=page_size)
        request = PageRequest(args["page"], args["page_size"])
        result = bus().handle(GetLoginActivity(user_id, request))
        items = [types.Activity.of(activity) for activity in result.items]
        return types.ActivityPage(items=items, page=request.page, page_size=request.size, total=result.total)
