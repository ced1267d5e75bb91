"""/api/users: registration, reading, listing, profile updates, deletion, confirmation."""

from __future__ import annotations

import json
from uuid import UUID

from flask import Response, current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE

from app.api import bus
from app.api.docs import BEARER, IF_MATCH, LOCATION, VALIDATORS, errors, not_modified
from app.api.schemas import (
    ActivityPageSchema,
    ConfirmSchema,
    PageArgs,
    RolesSchema,
    StatusSchema,
    UserCreateSchema,
    UserListArgs,
    UserPageSchema,
    UserSchema,
    UserUpdateSchema,
)
from app.http.auth import authorize, require_admin
from app.http.conditional import cache_policy, collection_etag, represent, write_condition
from app.http.exposure import location
from app.http.locale import current_locale
from app.http.user_representation import user_payload, user_response
from domain.auth.queries import GetLoginActivity
from domain.users.commands import (
    ChangeUserRoles,
    ChangeUserStatus,
    ConfirmUser,
    DeleteUser,
    RegisterUser,
    ResendConfirmation,
    UpdateUser,
)
from domain.users.queries import GetUser, ListUsers, PageRequest, UserFilter

blp = Blueprint("users", __name__, url_prefix="/api/users", description="User accounts")


@blp.route("")
class Users(MethodView):
    @blp.arguments(UserCreateSchema)
    @blp.response(201, UserSchema, headers={**VALIDATORS, **LOCATION})
    @blp.alt_response(
        202,
        description="REGISTRATION_ANSWER=accepted: the same answer whether or not the email had an account",
    )
    @errors(blp, 400, 409, 413, 415, 429)
    def post(self, body: dict) -> Response:
        """Register a user; a confirmation token is mailed to them (or, when the email already
        has an account and REGISTRATION_ANSWER=accepted, a note to its owner)"""
        conceal = current_app.config["REGISTRATION_ANSWER"] == "accepted"
        command = RegisterUser(
            **body, client_address=request.remote_addr, conceal_existing=conceal, locale=current_locale()
        )
        user = bus().handle(command)
        if conceal:  # no id, no validator: a new account and an existing one look alike
            return Response(status=202, headers={"Cache-Control": "no-store"})
        return user_response(user, 201, Location=location("users.UserById", user_id=user.id))

    @blp.arguments(UserListArgs, location="query", as_kwargs=True, unknown=RAISE)  # typos are errors
    @blp.response(200, UserPageSchema, headers=VALIDATORS)
    @blp.doc(security=BEARER)
    @not_modified(blp)
    @errors(blp, 401, 403)
    def get(
        self, page: int, page_size: int, email: str | None = None, confirmed: bool | None = None
    ) -> Response:
        """List users, filtered by email and confirmation, a page at a time (admins)"""
        require_admin()
        result = bus().handle(ListUsers(UserFilter(email, confirmed), PageRequest(page, page_size)))
        items = [user_payload(user) for user in result.items]
        etag = collection_etag(
            [
                email,
                confirmed,
                page,
                page_size,
                result.total,
                *((str(user.id), user.version) for user in result.items),
            ]
        )
        body = {"items": items, "page": page, "page_size": page_size, "total": result.total}
        return represent(json.dumps(body, ensure_ascii=False), etag, cache_policy().collection)


@blp.route("/<uuid:user_id>")
class UserById(MethodView):
    @blp.response(200, UserSchema, headers=VALIDATORS)
    @blp.doc(security=BEARER)
    @not_modified(blp)
    @errors(blp, 401, 403, 404)
    def get(self, user_id: UUID) -> Response:
        """Read a user (the user or an admin)"""
        authorize(user_id)
        return user_response(bus().handle(GetUser(user_id)))

    @blp.arguments(UserUpdateSchema, required=False)
    @blp.response(200, UserSchema, headers=VALIDATORS)
    @blp.doc(parameters=[IF_MATCH], security=BEARER)
    @errors(blp, 400, 401, 403, 404, 409, 412, 413, 415)
    def patch(self, body: dict, user_id: UUID) -> Response:
        """Change email, initials or password (an email or password comes with old_password, the
        current one); a new password ends every other session. No body changes nothing."""
        principal = authorize(user_id)
        command = UpdateUser(
            user_id=user_id,
            condition=write_condition(user_id),
            session_id=principal.session_id if principal.user_id == user_id else None,
            locale=current_locale(),
            **body,
        )
        return user_response(bus().handle(command))

    @blp.response(204)
    @blp.doc(parameters=[IF_MATCH], security=BEARER)
    @errors(blp, 401, 403, 404, 412)
    def delete(self, user_id: UUID) -> None:
        """Delete a user (the user or an admin); every session ends"""
        authorize(user_id)
        bus().handle(DeleteUser(user_id=user_id, condition=write_condition(user_id), locale=current_locale()))


@blp.route("/confirm")
class Confirmation(MethodView):
    @blp.arguments(ConfirmSchema)
    @blp.response(200, UserSchema, headers=VALIDATORS)
    @errors(blp, 400, 413, 415)
    def post(self, body: dict) -> Response:
        """Confirm an email address with the token from the confirmation mail"""
        return user_response(bus().handle(ConfirmUser(token=body["token"], locale=current_locale())))


@blp.route("/<uuid:user_id>/resend-confirmation-email")
class ResendConfirmationEmail(MethodView):
    @blp.response(202)
    @blp.doc(security=BEARER)
    @errors(blp, 401, 403, 404, 409, 429)
    def post(self, user_id: UUID) -> None:
        """Mail a new confirmation token (at most one a minute)"""
        authorize(user_id)
        bus().handle(ResendConfirmation(user_id=user_id, locale=current_locale()))


@blp.route("/<uuid:user_id>/roles")
class UserRoles(MethodView):
    @blp.arguments(RolesSchema)
    @blp.response(200, UserSchema, headers=VALIDATORS)
    @blp.doc(security=BEARER)
    @errors(blp, 400, 401, 403, 404, 413, 415)
    def put(self, body: dict, user_id: UUID) -> Response:
        """Replace a user's roles (admins); sessions see the new roles on their next request"""
        require_admin()
        command = ChangeUserRoles(user_id=user_id, roles=frozenset(body["roles"]), locale=current_locale())
        return user_response(bus().handle(command))


@blp.route("/<uuid:user_id>/status")
class UserStatusView(MethodView):
    @blp.arguments(StatusSchema)
    @blp.response(200, UserSchema, headers=VALIDATORS)
    @blp.doc(security=BEARER)
    @errors(blp, 400, 401, 403, 404, 413, 415)
    def put(self, body: dict, user_id: UUID) -> Response:
        """Disable (every session ends at once) or enable an account (admins)"""
        require_admin()
        command = ChangeUserStatus(user_id=user_id, status=body["status"], locale=current_locale())
        return user_response(bus().handle(command))


@blp.route("/<uuid:user_id>/activity")
class UserActivity(MethodView):
    @blp.arguments(PageArgs, location="query", as_kwargs=True, unknown=RAISE)
    @blp.response(200, ActivityPageSchema)
    @blp.doc(security=BEARER)
    @errors(blp, 401, 403, 404)
    def get(self, user_id: UUID, page: int, page_size: int) -> Response:
        """Logins, refreshes and logouts of a user, newest first (the user or an admin)"""
        authorize(user_id)
        result = bus().handle(GetLoginActivity(user_id, PageRequest(page, page_size)))
        body = ActivityPageSchema().dump(
            {"items": result.items, "page": page, "page_size": page_size, "total": result.total}
        )
        response = Response(json.dumps(body), mimetype="application/json")
        response.headers["Cache-Control"] = "private, no-cache"
        response.headers["Vary"] = "Authorization"
        return response
