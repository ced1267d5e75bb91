"""Mailer adapters: log (development), record (tests) and SMTP (production)."""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage

from adapters.i18n import Catalogs
from adapters.mail.templates import RenderedMail, render
from domain.mail import Mail

log = logging.getLogger(__name__)


class LoggingMailer:
    """Writes each mail to the log instead of sending it; tokens included, for development."""

    def __init__(self, catalogs: Catalogs) -> None:
        self._catalogs = catalogs

    def send(self, mail: Mail) -> None:
        rendered = render(mail, self._catalogs)
        log.info(
            "operation=mail.logged template=%s to=%s subject=%r\n%s",
            rendered.template,
            rendered.to,
            rendered.subject,
            rendered.body,
        )


class RecordingMailer:
    """Keeps every rendered mail in `outbox`."""

    def __init__(self, catalogs: Catalogs) -> None:
        self._catalogs = catalogs
        self.outbox: list[tuple[Mail, RenderedMail]] = []

    def send(self, mail: Mail) -> None:
        self.outbox.append((mail, render(mail, self._catalogs)))


class SmtpMailer:
    """Delivers through an SMTP server, with STARTTLS and login when configured."""

    def __init__(
        self,
        catalogs: Catalogs,
        host: str,
        port: int,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = True,
        timeout: float = 10.0,
    ) -> None:
        self._catalogs = catalogs
        self._host, self._port, self._sender = host, port, sender
        self._username, self._password = username, password
        self._starttls, self._timeout = starttls, timeout

    def send(self, mail: Mail) -> None:
        rendered = render(mail, self._catalogs)
        message = EmailMessage()
        message["From"], message["To"] = self._sender, rendered.to
        message["Subject"] = rendered.subject
        message.set_content(rendered.body)
        message["Content-Language"] = rendered.locale  # after set_content, which drops Content-*
        with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as smtp:
            if self._starttls:
                smtp.starttls(context=ssl.create_default_context())  # verify the server
            if self._username:
                smtp.login(self._username, self._password or "")
            smtp.send_message(message)
        log.info("operation=mail.sent template=%s", rendered.template)
