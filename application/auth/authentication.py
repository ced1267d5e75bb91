"""Authenticating a request: an access token is only as good as the user's current state.

The token's signature and expiry are checked first; then the user's UserState must say the
account is active and the token's session is live. The state comes from the store, with no
database read; on a miss (or an incomplete entry) it is rebuilt from the database and written
back by this owner. When the store cannot be reached the database answers instead: a token is
never accepted unchecked.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from application.session_state.states import load_state
from domain.auth.queries import Authenticate, Principal
from domain.errors import Unauthenticated
from domain.session_state.model import AccountStatus, StateUnavailable, UserState

if TYPE_CHECKING:
    from datetime import datetime

    from ports.access_tokens import AccessClaims, AccessTokens
    from ports.clock import Clock
    from ports.session_state import UserStateStore
    from ports.unit_of_work import UnitOfWork

log = logging.getLogger("user_service.auth")


def authenticate(
    query: Authenticate, *, access: AccessTokens, states: UserStateStore, uow: UnitOfWork, clock: Clock
) -> Principal:
    now = clock.now()
    claims = access.decode(query.access_token, now)
    if claims is None:
        raise Unauthenticated()
    try:
        state = states.read(claims.user_id, reader="authenticate")
        reachable = True
    except StateUnavailable:
        state, reachable = None, False
    if state is None or not state.complete:
        with uow:
            state = load_state(uow, claims.user_id, now)
        if state is None:
            raise Unauthenticated()
        if reachable:
            states.write(state)
    return principal_of(state, claims, now)


def principal_of(state: UserState, claims: AccessClaims, now: datetime) -> Principal:
    """The principal the state allows for these claims; raises Unauthenticated otherwise."""
    assert state.identity is not None and state.sessions is not None and state.roles is not None
    identity, sessions = state.identity.value, state.sessions.value
    session = sessions.live.get(claims.session_id)
    if identity.status != AccountStatus.ACTIVE or session is None or session.expires_at <= now:
        raise Unauthenticated()
    subscription = state.subscription.value if state.subscription is not None else None
    return Principal(
        claims.user_id,
        claims.session_id,
        identity.email,
        state.roles.value.roles,
        sessions.last_login_at,
        subscription,
    )
