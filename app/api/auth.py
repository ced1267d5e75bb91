"""/api/auth: login, token refresh, logout, and who am I."""

from __future__ import annotations

from typing import TypedDict

from flask import Response, jsonify, request
from flask.views import MethodView
from flask_smorest import Blueprint

from app.api import bus
from app.api.docs import BEARER, errors
from app.api.schemas import LoginSchema, MeSchema, RefreshSchema, TokenSchema
from app.http.auth import current_principal
from app.http.locale import current_locale
from app.http.me import me_body, me_headers
from domain.auth.commands import Login, Logout, RefreshToken
from domain.auth.queries import TokenPair

blp = Blueprint("auth", __name__, url_prefix="/api/auth", description="Sessions and tokens")

USER_AGENT_MAX = 255


class ClientInfo(TypedDict):
    client_address: str | None
    user_agent: str | None
    locale: str


def client() -> ClientInfo:
    """Where the request comes from, for throttling and the activity log."""
    agent = request.user_agent.string[:USER_AGENT_MAX] or None
    return {"client_address": request.remote_addr, "user_agent": agent, "locale": current_locale()}


def token_response(pair: TokenPair) -> Response:
    response = jsonify(
        access_token=pair.access_token,
        token_type="Bearer",
        expires_in=pair.expires_in,
        refresh_token=pair.refresh_token,
        user_id=str(pair.user_id),
        session_id=str(pair.session_id),
        **({"device_token": pair.device_token} if pair.device_token is not None else {}),
    )
    response.headers["Cache-Control"] = "no-store"  # RFC 6749 §5.1
    return response


@blp.route("/login")
class LoginView(MethodView):
    @blp.arguments(LoginSchema)
    @blp.response(200, TokenSchema)
    @errors(blp, 400, 401, 413, 415, 429)
    def post(self, body: dict) -> Response:
        """Log in with email and password: an access token and a refresh token for a new session"""
        command = Login(
            email=body["email"], password=body["password"], device_token=body.get("device_token"), **client()
        )
        return token_response(bus().handle(command))


@blp.route("/refresh")
class RefreshView(MethodView):
    @blp.arguments(RefreshSchema)
    @blp.response(200, TokenSchema)
    @errors(blp, 400, 401, 413, 415)
    def post(self, body: dict) -> Response:
        """Exchange the refresh token for new tokens; a refresh token used twice ends its session"""
        return token_response(bus().handle(RefreshToken(refresh_token=body["refresh_token"], **client())))


@blp.route("/logout")
class LogoutView(MethodView):
    @blp.response(204)
    @blp.doc(security=BEARER)
    @errors(blp, 401)
    def post(self) -> Response:
        """End the session of the access token; it and its refresh token stop working at once"""
        principal = current_principal()
        bus().handle(Logout(user_id=principal.user_id, session_id=principal.session_id, **client()))
        return Response(status=204, headers={"Cache-Control": "no-store"})


@blp.route("/me")
class MeView(MethodView):
    @blp.response(200, MeSchema)
    @blp.doc(security=BEARER)
    @errors(blp, 401)
    def get(self) -> Response:
        """The authenticated user and their subscription, as the session state says (no database read
        on a hit)"""
        body = me_body(current_principal())
        return Response(body, headers=me_headers(body, current_locale()))
