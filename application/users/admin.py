"""What only admins do to an account: change its roles, disable or enable it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from application.session_state.states import identity_of, sessions_of
from application.users.support import load_keeping_an_admin
from domain.auth.model import EndReason
from domain.errors import InvalidInput
from domain.messages import Message
from domain.session_state.model import UserState
from domain.users import rules
from domain.users.commands import ChangeUserRoles, ChangeUserStatus
from domain.users.events import UserRolesChanged, UserUpdated
from domain.users.model import User, UserStatus

if TYPE_CHECKING:
    from ports.clock import Clock
    from ports.session_state import UserStateStore
    from ports.unit_of_work import UnitOfWork

STATUS_UNKNOWN = Message("Must be one of: {choices}.", {"choices": "active, disabled"})


def change_user_roles(cmd: ChangeUserRoles, *, uow: UnitOfWork, clock: Clock) -> User:
    """The roles group of UserState is updated by the UserRolesChanged consumer."""
    roles = rules.check_roles(cmd.roles)
    with uow:
        user = load_keeping_an_admin(uow, cmd.user_id, could_remove="admin" not in roles)
        user.change_roles(roles)
        # Published even when nothing changed: a request that changes nothing may be the retry
        # of one answered 503 whose cache writes have not landed (app.acknowledgement), and its
        # answer must hold on every worker.
        now = clock.now()
        user.record(
            UserRolesChanged(
                user_id=user.id, roles=user.roles, version=user.version, occurred_at=now, locale=cmd.locale
            )
        )
        # And its representation's cached copies.
        user.record(UserUpdated(user_id=user.id, email=user.email, occurred_at=now, locale=cmd.locale))
        uow.commit()
    return user


def change_user_status(
    cmd: ChangeUserStatus, *, uow: UnitOfWork, states: UserStateStore, clock: Clock
) -> User:
    try:
        status = UserStatus(cmd.status)
    except ValueError:
        raise InvalidInput({"status": [STATUS_UNKNOWN]}) from None
    sessions = None
    with uow:
        user = load_keeping_an_admin(uow, cmd.user_id, could_remove=status == UserStatus.DISABLED)
        now = clock.now()
        changed = user.change_status(status)
        if status == UserStatus.DISABLED:
            sessions = uow.sessions.get(user.id, now, lock=True)
            if sessions is not None and changed:
                sessions.end_all(now, EndReason.DISABLED)
                uow.sessions.save(sessions)
        # Published and written even when nothing changed, as the roles are.
        user.record(UserUpdated(user_id=user.id, email=user.email, occurred_at=now, locale=cmd.locale))
        uow.commit()
        states.write(
            UserState(
                user.id,
                identity=identity_of(user),
                sessions=sessions_of(sessions, now) if sessions is not None else None,
            )
        )
    return user
