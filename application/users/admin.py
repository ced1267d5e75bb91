"""What only admins do to an account: change its roles, disable or enable it."""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from application.session_state.states import identity_of, sessions_of
from application.users.support import load_user
from domain.auth.model import EndReason
from domain.errors import Conflict, InvalidInput
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
LAST_ADMIN = Message(
    "This is the last active admin: make another account admin before removing its role or disabling it."
)


def _keep_an_admin(
    uow: UnitOfWork, user_id: UUID, *, roles: frozenset[str] | None, status: UserStatus | None
) -> User:
    """The user, locked; Conflict when the change would leave no active admin. A change that
    could take an admin away (roles without "admin", or disabling) locks the active admins'
    rows first, in one order for every such command, then the user's: two admins removing each
    other cannot both count the other."""
    could_remove = (roles is not None and "admin" not in roles) or status == UserStatus.DISABLED
    admins = uow.users.count_active_admins(lock=True) if could_remove else None
    user = load_user(uow, user_id, lock=True)
    removes = user.status == UserStatus.ACTIVE and "admin" in user.roles
    # Counted before this user's lock, which a promotion may have held: count again.
    if admins is not None and removes and admins <= 1 and uow.users.count_active_admins(lock=True) <= 1:
        raise Conflict(LAST_ADMIN)
    return user


def change_user_roles(cmd: ChangeUserRoles, *, uow: UnitOfWork, clock: Clock) -> User:
    """The roles group of UserState is updated by the UserRolesChanged consumer."""
    roles = rules.check_roles(cmd.roles)
    with uow:
        user = _keep_an_admin(uow, cmd.user_id, roles=roles, status=None)
        if user.change_roles(roles):
            now = clock.now()
            user.record(
                UserRolesChanged(
                    user_id=user.id,
                    roles=user.roles,
                    version=user.version,
                    occurred_at=now,
                    locale=cmd.locale,
                )
            )
            # The representation changed too.
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
        user = _keep_an_admin(uow, cmd.user_id, roles=None, status=status)
        now = clock.now()
        if not user.change_status(status):
            return user
        if status == UserStatus.DISABLED:
            sessions = uow.sessions.get(user.id, now, lock=True)
            if sessions is not None:
                sessions.end_all(now, EndReason.DISABLED)
                uow.sessions.save(sessions)
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
