from __future__ import annotations

import pytest

from domain.errors import AlreadyExists, InvalidInput, InvalidToken, Throttled
from domain.users.commands import ConfirmUser, RegisterUser, ResendConfirmation
from domain.users.events import UserRegistered, UserUpdated
from domain.users.queries import GetUser
from tests import factories


def test_register_normalises_email_and_mails_a_confirmation_token(bus, outbox, events, faker):
    data = factories.registration(faker, email="  Ada.Lovelace@Example.COM ")
    user = bus.handle(RegisterUser(**data, locale="uk"))

    assert user.email == "ada.lovelace@example.com"
    assert (user.confirmed, user.roles, user.version) == (False, frozenset({"user"}), 1)
    assert user.password_hash != data["password"]
    [(mail, rendered)] = outbox
    assert (mail.to, mail.template, mail.locale) == (user.email, "confirm_email", "uk")
    assert mail.params["token"] in rendered.body
    [registered] = events.of(UserRegistered)
    assert (registered.user_id, registered.email) == (user.id, user.email)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "not-an-email"),
        ("email", "a@b"),
        ("email", "x" * 250 + "@example.com"),
        ("initials", ""),
        ("initials", "   "),
        ("initials", "1AB"),
        ("initials", "A" * 256),
        ("password", "Short1A"),
        ("password", "Long1" + "a" * 60),
        ("password", "nouppercase1"),
        ("password", "NoDigitsHere"),
    ],
)
def test_registration_rules(bus, outbox, faker, field, value):
    with pytest.raises(InvalidInput) as refused:
        bus.handle(factories.register_user(faker, **{field: value}))
    assert list(refused.value.errors) == [field]
    assert outbox == []


@pytest.mark.parametrize("password", ["Abcdefg1", "A1" + "b" * 62])
def test_password_length_bounds_are_inclusive(bus, faker, password):
    assert bus.handle(factories.register_user(faker, password=password)).version == 1


def test_all_broken_rules_are_reported_at_once(bus, faker):
    with pytest.raises(InvalidInput) as refused:
        bus.handle(RegisterUser(email="nope", initials="9", password="short"))
    errors = refused.value.errors
    assert set(errors) == {"email", "initials", "password"}
    assert len(errors["password"]) == 3


def test_email_is_unique_whatever_its_case(bus, outbox, faker):
    first = bus.handle(factories.register_user(faker))
    with pytest.raises(AlreadyExists):
        bus.handle(factories.register_user(faker, email=first.email.upper()))
    assert len(outbox) == 1


def test_confirm_with_the_mailed_token_once(bus, outbox, events, faker):
    user = bus.handle(factories.register_user(faker))
    token = outbox[0][0].params["token"]

    confirmed = bus.handle(ConfirmUser(token=token))

    assert (confirmed.confirmed, confirmed.version) == (True, 2)
    assert events.of(UserUpdated)[-1].user_id == user.id
    with pytest.raises(InvalidToken):
        bus.handle(ConfirmUser(token=token))
    assert bus.handle(GetUser(user.id)).version == 2


def test_confirmation_token_expires_after_24_hours(bus, outbox, clock, faker):
    bus.handle(factories.register_user(faker))
    clock.advance(hours=24)
    with pytest.raises(InvalidToken):
        bus.handle(ConfirmUser(token=outbox[0][0].params["token"]))


def test_unknown_token_is_refused(bus):
    with pytest.raises(InvalidToken):
        bus.handle(ConfirmUser(token="made-up"))


def test_resend_is_throttled_and_replaces_the_token(bus, outbox, clock, faker):
    user = bus.handle(factories.register_user(faker))
    clock.advance(seconds=20)
    with pytest.raises(Throttled) as throttled:
        bus.handle(ResendConfirmation(user_id=user.id))
    assert throttled.value.retry_after == 40

    clock.advance(seconds=40)
    bus.handle(ResendConfirmation(user_id=user.id))

    first, second = (mail.params["token"] for mail, _ in outbox)
    with pytest.raises(InvalidToken):
        bus.handle(ConfirmUser(token=first))
    assert bus.handle(ConfirmUser(token=second)).confirmed


def test_resend_to_a_confirmed_user_is_refused(bus, outbox, faker):
    user = bus.handle(factories.register_user(faker))
    bus.handle(ConfirmUser(token=outbox[0][0].params["token"]))
    with pytest.raises(AlreadyExists):
        bus.handle(ResendConfirmation(user_id=user.id))
