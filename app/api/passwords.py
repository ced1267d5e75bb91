"""/api/reset-password: forgotten passwords."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from app.api import bus
from app.api.docs import errors
from app.api.schemas import ResetConfirmSchema, ResetRequestSchema
from app.http.locale import current_locale
from domain.users.commands import ConfirmPasswordReset, RequestPasswordReset

blp = Blueprint("passwords", __name__, url_prefix="/api/reset-password", description="Password reset")


@blp.route("")
class ResetRequest(MethodView):
    @blp.arguments(ResetRequestSchema)
    @blp.response(204)
    @errors(blp, 400, 413, 415)
    def post(self, body: dict) -> None:
        """Mail a reset token if the account exists; the answer is the same either way, and so is
        its time: the request is handled after the answer (app.deferred)"""
        current_app.extensions["deferred"].submit(
            RequestPasswordReset(email=body["email"], locale=current_locale())
        )


@blp.route("/confirm")
class ResetConfirmation(MethodView):
    @blp.arguments(ResetConfirmSchema)
    @blp.response(204)
    @errors(blp, 400, 413, 415)
    def post(self, body: dict) -> None:
        """Set a new password with the token from the reset mail (single use, one hour)"""
        bus().handle(
            ConfirmPasswordReset(token=body["token"], password=body["password"], locale=current_locale())
        )
