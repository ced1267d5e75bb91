"""The message maps of the users context: one handler per command and query, a list of
subscribers per event. The composition root binds each handler's ports.

Handlers are plain functions: the message first, then the ports they need as keyword
arguments. Mails that carry a secret token are sent by the handler after commit, never through
an event, so no token travels through an event log or broker.
"""

from __future__ import annotations

from application.messagebus import Handler
from application.users.admin import change_user_roles, change_user_status
from application.users.notifications import notify_email_changed, notify_password_changed
from application.users.passwords import confirm_password_reset, request_password_reset
from application.users.profile import delete_user, get_user, list_users, update_user
from application.users.registration import confirm_user, register_user, resend_confirmation
from domain.users.commands import (
    ChangeUserRoles,
    ChangeUserStatus,
    ConfirmPasswordReset,
    ConfirmUser,
    DeleteUser,
    RegisterUser,
    RequestPasswordReset,
    ResendConfirmation,
    UpdateUser,
)
from domain.users.events import EmailChanged, PasswordChanged
from domain.users.queries import GetUser, ListUsers

COMMAND_HANDLERS: dict[type, Handler] = {
    RegisterUser: register_user,
    ConfirmUser: confirm_user,
    ResendConfirmation: resend_confirmation,
    UpdateUser: update_user,
    RequestPasswordReset: request_password_reset,
    ConfirmPasswordReset: confirm_password_reset,
    DeleteUser: delete_user,
    ChangeUserRoles: change_user_roles,
    ChangeUserStatus: change_user_status,
}
QUERY_HANDLERS: dict[type, Handler] = {GetUser: get_user, ListUsers: list_users}
EVENT_HANDLERS: dict[type, list[Handler]] = {
    EmailChanged: [notify_email_changed],
    PasswordChanged: [notify_password_changed],
}
