"""Who a request comes from: the bearer access token, checked against UserState once per
request (the hot path may already have done it: see app.http.hot_path)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from flask import current_app, request

from domain.auth.queries import Authenticate, Principal
from domain.errors import PermissionDenied, Unauthenticated

# The request's Principal, or the Unauthenticated error its token got, once it was checked.
ENVIRON_KEY = "user_service.principal"


MAX_AUTHORIZATION = 4096  # characters: this service's tokens are under 400


def bearer_token(environ: Mapping[str, Any]) -> str | None:
    """The Bearer token of the Authorization header; None for none, another scheme, or a header
    too long to be one of this service's tokens (never decoded: answered 401)."""
    header = environ.get("HTTP_AUTHORIZATION", "")
    if len(header) > MAX_AUTHORIZATION:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def check(environ: dict[str, Any], authenticate) -> Principal:
    """The principal of the request's token, remembered in the WSGI environ; raises
    Unauthenticated, or the outage that stopped the check (the same one again on a second call:
    the view behind the hot path does not wait out a timeout the hot path already met)."""
    outcome = environ.get(ENVIRON_KEY)
    if outcome is None:
        token = bearer_token(environ)
        try:
            if token is None:
                raise Unauthenticated()
            outcome = authenticate(Authenticate(token))
        except Exception as error:
            outcome = error
        environ[ENVIRON_KEY] = outcome
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def current_principal() -> Principal:
    return check(request.environ, current_app.extensions["container"].bus().handle)


def authorize(user_id: UUID) -> Principal:
    """The principal, if it may read and change this user: the user themself or an admin."""
    principal = current_principal()
    if not principal.may_access(user_id):
        raise PermissionDenied()
    return principal


def own() -> UUID | None:
    """Whose subscriptions the principal may see and change: their own, or (None) anyone's."""
    principal = current_principal()
    return None if principal.is_admin else principal.user_id


def check_again() -> None:
    """Forget the request's remembered check: the next one reads the session state again (after
    a write that may have changed it, when the same request goes on to another)."""
    request.environ.pop(ENVIRON_KEY, None)


def require_admin() -> Principal:
    principal = current_principal()
    if not principal.is_admin:
        raise PermissionDenied()
    return principal
