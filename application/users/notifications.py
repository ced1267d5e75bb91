"""Event subscribers that tell the user about changes to their account."""

from __future__ import annotations

from typing import TYPE_CHECKING

from domain.mail import Mail
from domain.users.events import EmailChanged, PasswordChanged

if TYPE_CHECKING:
    from ports.mail import Mailer


def notify_email_changed(event: EmailChanged, *, mailer: Mailer) -> None:
    mailer.send(Mail(event.previous_email, "email_changed", event.locale, {"email": event.email}))


def notify_password_changed(event: PasswordChanged, *, mailer: Mailer) -> None:
    mailer.send(Mail(event.email, "password_changed", event.locale, {}))
