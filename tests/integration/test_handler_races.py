"""Handlers racing on one account, on every backend: the database serialises them."""

from __future__ import annotations

from adapters.clock import SystemClock
from adapters.security import SecretsTokenGenerator
from application.users.admin import change_user_roles, change_user_status
from application.users.passwords import request_password_reset
from domain.errors import ConcurrentUpdate, Conflict
from domain.users.commands import ChangeUserRoles, ChangeUserStatus, RequestPasswordReset
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
            read_uow=backend.read_uow(),
            tokens=SecretsTokenGenerator(),
            clock=SystemClock(),
            mailer=outbox,
        )

    outcome = race(*[request] * 4)
    assert outcome.errors == []
    assert len(outbox.mails) == 1


def test_two_admins_removing_each_other_leave_one(backend, make_user):
    """Each command counts the active admins under their locks: both cannot see the other."""
    for attempt in range(5):
        one, other = (
            make_user(roles=frozenset({"user", "admin"})),
            make_user(roles=frozenset({"user", "admin"})),
        )
        with backend.uow() as uow:
            uow.users.add(one)
            uow.users.add(other)
            uow.commit()

        def demote() -> None:
            change_user_roles(
                ChangeUserRoles(user_id=one.id, roles=frozenset({"user"})),
                uow=backend.uow(),
                clock=SystemClock(),
            )

        def disable() -> None:
            change_user_status(
                ChangeUserStatus(user_id=other.id, status="disabled"),
                uow=backend.uow(),
                states=NoStates(),
                clock=SystemClock(),
            )

        outcome = race(demote, disable)
        assert all(isinstance(error, Conflict | ConcurrentUpdate) for error in outcome.errors), outcome.errors
        assert len(outcome.errors) == 1, f"attempt {attempt}: both succeeded or both failed"
        with backend.uow() as uow:
            assert uow.users.count_active_admins() == 1
            for user in (one, other):  # the next round starts with no admin left over
                uow.users.remove(uow.users.get(user.id))
            uow.commit()


class NoStates:
    def write(self, state):
        return frozenset()

    def read(self, user_id, *, reader):
        return None

    def delete(self, user_id) -> None:
        pass
