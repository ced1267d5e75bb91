"""Mailers: SMTP against a real SMTP server (aiosmtpd on loopback), and rendering per locale."""

from __future__ import annotations

import email
import socket
from email.policy import default as default_policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message as MessageHandler

from adapters.i18n import Catalogs
from adapters.mail.background import BackgroundMailer
from adapters.mail.mailers import LoggingMailer, SmtpMailer
from domain.mail import Mail


class Inbox(MessageHandler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list = []

    def handle_message(self, message) -> None:
        self.messages.append(message)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, inbox
    finally:
        controller.stop()


def test_smtp_mailer_delivers_a_rendered_localized_mail(smtp_server):
    controller, inbox = smtp_server
    mailer = SmtpMailer(
        Catalogs(),
        host="127.0.0.1",
        port=controller.port,
        sender="accounts@example.com",
        starttls=False,
        timeout=5,
    )

    mailer.send(Mail("ada@example.com", "confirm_email", "uk", {"token": "tok-123"}))

    [received] = inbox.messages
    parsed = email.message_from_string(received.as_string(), policy=default_policy)
    assert (parsed["From"], parsed["To"], parsed["Content-Language"]) == (
        "accounts@example.com",
        "ada@example.com",
        "uk",
    )
    assert (
        parsed["Subject"]
        == Catalogs().render("Confirm your email address", "uk")
        != "Confirm your email address"
    )
    assert "tok-123" in parsed.get_content()


def test_smtp_mailer_raises_when_the_server_is_unreachable():
    mailer = SmtpMailer(
        Catalogs(), host="127.0.0.1", port=free_port(), sender="a@example.com", starttls=False, timeout=1
    )
    with pytest.raises(OSError):
        mailer.send(Mail("ada@example.com", "password_changed", "en"))


def test_logging_mailer_logs_the_rendered_mail(caplog):
    caplog.set_level("INFO")
    LoggingMailer(Catalogs()).send(Mail("ada@example.com", "reset_password", "vi", {"token": "tok-9"}))
    assert "tok-9" in caplog.text and "operation=mail.logged" in caplog.text


def test_background_mailer_delivers_after_returning(smtp_server):
    controller, inbox = smtp_server
    smtp = SmtpMailer(
        Catalogs(), host="127.0.0.1", port=controller.port, sender="a@example.com", starttls=False, timeout=5
    )
    mailer = BackgroundMailer(smtp)
    mailer.send(Mail("ada@example.com", "password_changed", "en"))
    mailer.send(Mail("bob@example.com", "password_changed", "vi"))
    mailer.close()  # drains the queue
    assert sorted(m["To"] for m in inbox.messages) == ["ada@example.com", "bob@example.com"]


def test_background_mailer_retries_then_logs_the_failure(caplog):
    class Flaky:
        def __init__(self) -> None:
            self.calls = 0

        def send(self, mail) -> None:
            self.calls += 1
            raise OSError("smtp down")

    flaky = Flaky()
    mailer = BackgroundMailer(flaky, attempts=3)
    mailer.send(Mail("ada@example.com", "password_changed", "en"))
    mailer.close()
    assert flaky.calls == 3
    assert "operation=mail.failed" in caplog.text
