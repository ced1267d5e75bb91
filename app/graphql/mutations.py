"""The mutations: each one a REST write's command on the bus, with its access check."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import strawberry
from flask import current_app, request

from app.api import bus
from app.api.schemas import (
    ConfirmSchema,
    ResetConfirmSchema,
    ResetRequestSchema,
    RolesSchema,
    SubscriptionCreateSchema,
    UserCreateSchema,
    UserUpdateSchema,
)
from app.graphql import types
from app.graphql.arguments import load
from app.http.auth import authorize, check_again, current_principal, own, require_admin
from app.http.conditional import version_condition
from app.http.locale import current_locale
from domain.subscriptions.commands import CancelSubscription, RegisterSubscription
from domain.users.commands import (
    ChangeUserRoles,
    ConfirmPasswordReset,
    ConfirmUser,
    DeleteUser,
    RegisterUser,
    RequestPasswordReset,
    UpdateUser,
)

IfMatch = Annotated[
    str | None,
    strawberry.argument(
        description="The ETag last read, in If-Match's syntax: a stale one is refused (PRECONDITION_FAILED)"
    ),
]


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Register a user; null when REGISTRATION_ANSWER=accepted (the same answer "
        "whether or not the email had an account)"
    )
    def create_user(self, input: types.CreateUserInput) -> types.User | None:
        body = load(UserCreateSchema(), email=input.email, initials=input.initials, password=input.password)
        conceal = current_app.config["REGISTRATION_ANSWER"] == "accepted"
        command = RegisterUser(
            **body, client_address=request.remote_addr, conceal_existing=conceal, locale=current_locale()
        )
        user = bus().handle(command)
        return None if conceal else types.User.of(user)

    @strawberry.mutation(description="Change email, initials or password (the user or an admin)")
    def update_user(
        self,
        id: UUID,
        input: types.UpdateUserInput,
        if_match: IfMatch = None,
    ) -> types.User:
        check_again()  # as the caller is now: an earlier mutation may have changed it
        principal = authorize(id)
        body = load(
            UserUpdateSchema(),
            email=input.email,
            initials=input.initials,
            password=input.password,
            old_password=input.old_password,
        )
        command = UpdateUser(
            user_id=id,
            condition=version_condition(id, if_match),
            session_id=principal.session_id if principal.user_id == id else None,
            locale=current_locale(),
            **body,
        )
        return types.User.of(bus().handle(command))

    @strawberry.mutation(description="Delete a user (the user or an admin); every session ends")
    def delete_user(self, id: UUID, if_match: IfMatch = None) -> bool:
        check_again()  # as the caller is now: an earlier mutation may have changed it
        authorize(id)
        bus().handle(
            DeleteUser(user_id=id, condition=version_condition(id, if_match), locale=current_locale())
        )
        return True

    @strawberry.mutation(description="Confirm an email address with the token from the confirmation mail")
    def confirm_user(self, token: str) -> types.User:
        body = load(ConfirmSchema(), token=token)
        return types.User.of(bus().handle(ConfirmUser(token=body["token"], locale=current_locale())))

    @strawberry.mutation(
        description="Mail a reset token if the account exists; the answer is the same either way"
    )
    def request_password_reset(self, email: str) -> bool:
        body = load(ResetRequestSchema(), email=email)
        current_app.extensions["deferred"].submit(
            RequestPasswordReset(email=body["email"], locale=current_locale())
        )
        return True

    @strawberry.mutation(description="Set a new password with the token from the reset mail")
    def confirm_password_reset(self, token: str, password: str) -> bool:
        body = load(ResetConfirmSchema(), token=token, password=password)
        bus().handle(ConfirmPasswordReset(**body, locale=current_locale()))
        return True

    @strawberry.mutation(description="Replace a user's roles (admins)")
    def change_roles(self, id: UUID, roles: list[str]) -> types.User:
        check_again()  # as the caller is now: an earlier mutation may have changed it
        require_admin()
        body = load(RolesSchema(), roles=roles)
        command = ChangeUserRoles(user_id=id, roles=frozenset(body["roles"]), locale=current_locale())
        return types.User.of(bus().handle(command))

    @strawberry.mutation(description="Subscribe the signed-in user to a plan (pending until paid)")
    def register_subscription(self, plan: str) -> types.Subscription:
        check_again()  # as the caller is now: an earlier mutation may have changed it
        principal = current_principal()
        body = load(SubscriptionCreateSchema(), plan=plan)
        command = RegisterSubscription(user_id=principal.user_id, plan=body["plan"], locale=current_locale())
        return types.Subscription.of(bus().handle(command))

    @strawberry.mutation(description="Cancel a subscription at once (its user or an admin)")
    def cancel_subscription(self, id: UUID, if_match: IfMatch = None) -> types.Subscription:
        check_again()  # as the caller is now: an earlier mutation may have changed it
        command = CancelSubscription(
            subscription_id=id,
            user_id=own(),
            condition=version_condition(id, if_match),
            locale=current_locale(),
        )
        return types.Subscription.of(bus().handle(command))
