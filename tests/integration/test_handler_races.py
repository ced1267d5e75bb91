"""Handlers racing on one account, on every backend: the database serialises them."""

from __future__ import annotations

import threading

from adapters.clock import SystemClock
from adapters.security import SecretsTokenGenerator
from application.users.passwords import request_password_reset
from domain.users.commands import RequestPasswordReset


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
    outbox, start, errors = Outbox(), threading.Barrier(4), []

    def request() -> None:
        start.wait(10)
        try:
            request_password_reset(
                RequestPasswordReset(email=user.email),
                uow=backend.uow(),
                tokens=SecretsTokenGenerator(),
                clock=SystemClock(),
                mailer=outbox,
            )
        except Exception as error:  # collected: an assertion in a thread would be lost
            errors.append(error)

    threads = [threading.Thread(target=request) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert len(outbox.mails) == 1
