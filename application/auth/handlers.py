"""The message maps of the auth context."""

from __future__ import annotations

from application.auth.activity import get_login_activity, record_login_activity
from application.auth.authentication import authenticate
from application.auth.consumers import update_roles_state
from application.auth.sessions import login, logout, refresh_token
from application.messagebus import Handler
from domain.auth.commands import Login, Logout, RefreshToken
from domain.auth.events import UserLoggedIn, UserLoggedOut
from domain.auth.queries import Authenticate, GetLoginActivity
from domain.users.events import UserRolesChanged

COMMAND_HANDLERS: dict[type, Handler] = {Login: login, RefreshToken: refresh_token, Logout: logout}
QUERY_HANDLERS: dict[type, Handler] = {Authenticate: authenticate, GetLoginActivity: get_login_activity}
EVENT_HANDLERS: dict[type, list[Handler]] = {
    UserLoggedIn: [record_login_activity],
    UserLoggedOut: [record_login_activity],
    UserRolesChanged: [update_roles_state],
}
