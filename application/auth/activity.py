"""The login-activity log: a consumer of the session events, and its query.

The consumer owns no UserState group. It only reads the state to verify that the handler wrote
it first (a miss is logged, and counted by the store under this reader) and records its row.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from application.users.support import load_user
from domain.auth.events import UserLoggedIn, UserLoggedOut
from domain.auth.model import LoginActivity
from domain.auth.queries import GetLoginActivity
from domain.session_state.model import StateUnavailable
from domain.users.queries import Page

if TYPE_CHECKING:
    from ports.session_state import UserStateStore
    from ports.unit_of_work import UnitOfWork

log = logging.getLogger("user_service.auth")


def record_login_activity(
    event: UserLoggedIn | UserLoggedOut, *, uow: UnitOfWork, states: UserStateStore
) -> None:
    try:
        if states.read(event.user_id, reader="login_activity") is None:
            log.warning(
                "operation=user_state.miss consumer=login_activity user=%s event=%s",
                event.user_id,
                event.event_id,
            )
    except StateUnavailable:
        pass  # the store's own failure is logged and counted there
    with uow:
        if uow.users.get(event.user_id) is None:
            return  # deleted since: its activity went with it
        uow.activity.add(
            LoginActivity(
                id=event.event_id,
                user_id=event.user_id,
                occurred_at=event.occurred_at,
                kind=event.kind,
                client_address=event.client_address,
                user_agent=event.user_agent,
            )
        )
        uow.commit()


def get_login_activity(query: GetLoginActivity, *, uow: UnitOfWork) -> Page[LoginActivity]:
    with uow:
        load_user(uow, query.user_id)
        return uow.activity.list(query.user_id, query.page)
