"""The message maps of the auth context."""

from __future__ import annotations

from domain.auth.activity import get_login_activity, record_login_activity
from domain.auth.authentication import authenticate
from domain.auth.commands import Login, Logout, RefreshToken
from domain.auth.consumers import update_roles_state
from domain.auth.events import UserLoggedIn, UserLoggedOut
from domain.auth.queries import Authenticate, GetLoginActivity
from domain.auth.sessions import login, logout, refresh_token
from domain.users.events import UserRolesChanged

COMMAND_HANDLERS = {Login: login, RefreshToken: refresh_token, Logout: logout}
QUERY_HANDLERS = {Authenticate: authenticate, GetLoginActivity: get_login_activity}
EVENT_HANDLERS = {
    UserLoggedIn: [record_login_activity],
    UserLoggedOut: [record_login_activity],
    UserRolesChanged: [update_roles_state],
}
