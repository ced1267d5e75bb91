from __future__ import annotations

import pytest

from domain.errors import InvalidInput, InvalidToken
from domain.users.commands import ConfirmPasswordReset, RequestPasswordReset
from domain.users.events import PasswordChanged
from domain.users.queries import GetUser
from tests import factories


@pytest.fixture
def user(bus, outbox, faker):
    user = bus.handle(factories.register_user(faker))
    outbox.clear()
    return user


def reset_token(outbox) -> str:
    return next(m.params["token"] for m, _ in reversed(outbox) if m.template == "reset_password")


def test_unknown_email_answers_the_same_and_mails_nothing(bus, outbox):
    assert bus.handle(RequestPasswordReset(email="nobody@example.com")) is None
    assert outbox == []


def test_reset_sets_a_new_password_once(bus, outbox, events, container, user):
    bus.handle(RequestPasswordReset(email=user.email.upper(), locale="vi"))
    token = reset_token(outbox)
    assert outbox[0][0].locale == "vi"

    bus.handle(ConfirmPasswordReset(token=token, password="Reset1234"))

    stored = bus.handle(GetUser(user.id))
    assert container.hasher().verify(stored.password_hash, "Reset1234")
    assert stored.version == 2
    assert [e.user_id for e in events.of(PasswordChanged)] == [user.id]
    with pytest.raises(InvalidToken):
        bus.handle(ConfirmPasswordReset(token=token, password="Again1234"))


def test_requests_are_limited_to_one_mail_a_minute(bus, outbox, clock, user):
    bus.handle(RequestPasswordReset(email=user.email))
    bus.handle(RequestPasswordReset(email=user.email))
    assert len(outbox) == 1
    clock.advance(seconds=60)
    bus.handle(RequestPasswordReset(email=user.email))
    assert len(outbox) == 2


def test_reset_token_expires_after_an_hour(bus, outbox, clock, user):
    bus.handle(RequestPasswordReset(email=user.email))
    clock.advance(hours=1)
    with pytest.raises(InvalidToken):
        bus.handle(ConfirmPasswordReset(token=reset_token(outbox), password="Reset1234"))


def test_a_used_reset_revokes_the_other_reset_tokens(bus, outbox, clock, user):
    bus.handle(RequestPasswordReset(email=user.email))
    first = reset_token(outbox)
    clock.advance(seconds=61)
    bus.handle(RequestPasswordReset(email=user.email))
    bus.handle(ConfirmPasswordReset(token=reset_token(outbox), password="Reset1234"))
    with pytest.raises(InvalidToken):
        bus.handle(ConfirmPasswordReset(token=first, password="Other1234"))


def test_an_invalid_new_password_keeps_the_token(bus, outbox, user):
    bus.handle(RequestPasswordReset(email=user.email))
    token = reset_token(outbox)
    with pytest.raises(InvalidInput):
        bus.handle(ConfirmPasswordReset(token=token, password="weak"))
    bus.handle(ConfirmPasswordReset(token=token, password="Strong123"))
