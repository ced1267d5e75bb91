"""Handlers racing on one account, on every backend: the database serialises them."""

from __future__ import annotations

from adapters.clock import SystemClock
from adapters.security import SecretsTokenGenerator
from application.users.passwords import request_password_reset
from domain.users.commands import RequestPasswordReset
from tests.support.races import race


class Outbox:
    def __init__(self) -> None:
        self.mails: list = []

    def send(self, mail) -> None:
        self.mails.append(mail)


def test_concurrent_reset_requests_issue_one_token(backend, make_user):
    user = make_user()
    with backend.uow() as uow:
        uow.users.add(user)
        uow.commit()
    outbox = Outbox()

    def request() -> None:
        request_password_reset(
            RequestPasswordReset(email=user.email),
            uow=backend.uow(),
            tokens=SecretsTokenGenerator(),
            clock=SystemClock(),
            mailer=outbox,
        )

    outcome = race(*[request] * 4)
    assert outcome.errors == []
    assert len(outbox.mails) == 1
