"""Partial UserState updates by the owners of single groups (DESIGN §4, "Nothing else")."""

from __future__ import annotations

from typing import TYPE_CHECKING

from domain.session_state.model import Group, Roles, UserState, Versioned, writes
from domain.users.events import UserRolesChanged

if TYPE_CHECKING:
    from ports.session_state import UserStateStore


@writes(Group.ROLES)
def update_roles_state(event: UserRolesChanged, *, states: UserStateStore) -> None:
    """Write the roles group only, at the user's version with these roles: a login that read
    the older roles and writes after this is refused by the store's compare-and-set (I3)."""
    states.write(UserState(event.user_id, roles=Versioned(event.version, Roles(frozenset(event.roles)))))
