"""Mail templates: a subject and a body per template, both catalog msgids."""

from __future__ import annotations

from dataclasses import dataclass

from adapters.i18n import Catalogs
from domain.mail import Mail
from domain.messages import Message

TEMPLATES = {
    "confirm_email": (
        Message("Confirm your email address"),
        Message(
            "Welcome! To confirm your email address, send this token to "
            "POST /api/users/confirm: {token}\nIt is valid for 24 hours."
        ),
    ),
    "already_registered": (
        Message("You already have an account"),
        Message(
            "Someone asked to register a new account with this email address, which already has "
            "one. If it was you, log in, or choose a new password with POST /api/reset-password. "
            "If it was not, you can ignore this mail: nothing was changed."
        ),
    ),
    "reset_password": (
        Message("Reset your password"),
        Message(
            "To choose a new password, send this token with it to "
            "POST /api/reset-password/confirm: {token}\nIt is valid for one hour and "
            "can be used once. If you did not ask for this, ignore this mail."
        ),
    ),
    "email_changed": (
        Message("Your email address was changed"),
        Message(
            "The email address of your account was changed to {email}. "
            "If you did not do this, reset your password at once."
        ),
    ),
    "password_changed": (
        Message("Your password was changed"),
        Message(
            "The password of your account was changed. If you did not do this, reset your password at once."
        ),
    ),
}


@dataclass(frozen=True)
class RenderedMail:
    to: str
    subject: str
    body: str
    locale: str
    template: str


def render(mail: Mail, catalogs: Catalogs) -> RenderedMail:
    subject, body = TEMPLATES[mail.template]
    return RenderedMail(
        to=mail.to,
        subject=catalogs.render(subject, mail.locale),
        body=catalogs.render(body, mail.locale, **mail.params),
        locale=mail.locale,
        template=mail.template,
    )
