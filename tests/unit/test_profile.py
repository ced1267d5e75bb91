from __future__ import annotations

import pytest

from domain.conditions import VersionCondition
from domain.errors import AlreadyExists, InvalidInput, InvalidToken, NotFound, StaleVersion
from domain.users.commands import (
    ConfirmPasswordReset,
    ConfirmUser,
    DeleteUser,
    RequestPasswordReset,
    UpdateUser,
)
from domain.users.events import EmailChanged, PasswordChanged, UserDeleted, UserUpdated
from domain.users.queries import GetUser
from tests import factories


def matching(*versions: int) -> VersionCondition:
    """If-Match naming these versions."""
    return VersionCondition(match=frozenset(versions))


def test_initials_change_needs_no_password(bus, events, account):
    user, _ = account
    updated = bus.handle(UpdateUser(user_id=user.id, initials="ZZ"))
    assert (updated.initials, updated.version) == ("ZZ", 2)
    [event] = events.of(UserUpdated)
    assert (event.user_id, event.email, event.previous_email) == (user.id, user.email, None)


def test_nothing_to_change_changes_nothing_but_still_refreshes_the_caches(bus, events, account):
    # It may be the retry of an update answered 503 whose cache writes have not landed.
    user, _ = account
    assert bus.handle(UpdateUser(user_id=user.id, initials=user.initials)).version == 1
    [event] = events.of(UserUpdated)
    assert (event.user_id, event.previous_email) == (user.id, None)


@pytest.mark.parametrize("change", [{"email": "new@example.com"}, {"password": "Another123"}])
def test_email_or_password_change_needs_the_current_password(bus, account, change):
    user, _ = account
    with pytest.raises(InvalidInput) as missing:
        bus.handle(UpdateUser(user_id=user.id, **change))
    with pytest.raises(InvalidInput) as wrong:
        bus.handle(UpdateUser(user_id=user.id, old_password="Wrong1234", **change))
    assert list(missing.value.errors) == list(wrong.value.errors) == ["old_password"]
    assert bus.handle(GetUser(user.id)).version == 1


def test_email_change_unconfirms_and_mails_both_addresses(bus, outbox, events, account):
    user, password = account
    updated = bus.handle(UpdateUser(user_id=user.id, email=" New@Example.com", old_password=password))

    assert (updated.email, updated.confirmed, updated.version) == ("new@example.com", False, 2)
    [changed] = events.of(EmailChanged)
    assert (changed.email, changed.previous_email) == ("new@example.com", user.email)
    [event] = events.of(UserUpdated)
    assert event.previous_email == user.email
    assert sorted((m.template, m.to) for m, _ in outbox) == [
        ("confirm_email", "new@example.com"),
        ("email_changed", user.email),
    ]
    token = next(m.params["token"] for m, _ in outbox if m.template == "confirm_email")
    assert bus.handle(ConfirmUser(token=token)).confirmed


def test_email_change_revokes_the_old_confirmation_token(bus, outbox, faker, account):
    data = factories.registration(faker)
    user = bus.handle(factories.RegisterUser(**data))
    old_token = outbox[-1][0].params["token"]
    bus.handle(UpdateUser(user_id=user.id, email="other@example.com", old_password=data["password"]))
    with pytest.raises(InvalidToken):
        bus.handle(ConfirmUser(token=old_token))


def test_email_change_to_a_taken_address_is_refused(bus, faker, account):
    user, password = account
    other = bus.handle(factories.register_user(faker))
    with pytest.raises(AlreadyExists):
        bus.handle(UpdateUser(user_id=user.id, email=other.email, old_password=password))
    assert bus.handle(GetUser(user.id)).email == user.email


def test_password_change(bus, outbox, events, container, account):
    user, password = account
    bus.handle(UpdateUser(user_id=user.id, password="Brand9New", old_password=password))
    stored = bus.handle(GetUser(user.id))
    assert container.hasher().verify(stored.password_hash, "Brand9New")
    assert [e.user_id for e in events.of(PasswordChanged)] == [user.id]
    assert [m.template for m, _ in outbox] == ["password_changed"]


def test_new_password_must_follow_the_rules(bus, account):
    user, password = account
    with pytest.raises(InvalidInput) as refused:
        bus.handle(UpdateUser(user_id=user.id, password="weak", old_password=password))
    assert list(refused.value.errors) == ["password"]


def test_update_with_a_stale_version_is_refused(bus, account):
    user, _ = account
    bus.handle(UpdateUser(user_id=user.id, initials="V2"))
    with pytest.raises(StaleVersion):
        bus.handle(UpdateUser(user_id=user.id, initials="V3", condition=matching(1)))
    assert bus.handle(UpdateUser(user_id=user.id, initials="V3", condition=matching(1, 2))).version == 3


def test_delete(bus, events, account):
    user, _ = account
    with pytest.raises(StaleVersion):
        bus.handle(DeleteUser(user_id=user.id, condition=matching(7)))
    bus.handle(DeleteUser(user_id=user.id, condition=matching(1)))
    [deleted] = events.of(UserDeleted)
    assert (deleted.user_id, deleted.email) == (user.id, user.email)
    with pytest.raises(NotFound):
        bus.handle(GetUser(user.id))
    with pytest.raises(NotFound):
        bus.handle(DeleteUser(user_id=user.id))


def test_deleting_a_user_ends_its_tokens(bus, outbox, faker):
    user = bus.handle(factories.register_user(faker))
    bus.handle(DeleteUser(user_id=user.id))
    with pytest.raises(InvalidToken):
        bus.handle(ConfirmUser(token=outbox[0][0].params["token"]))


def test_one_change_is_one_version_whatever_it_touches(bus, account):
    user, password = account
    changed = bus.handle(
        UpdateUser(
            user_id=user.id,
            email="all@example.com",
            initials="AL",
            password="Every1234",
            old_password=password,
        )
    )
    assert changed.version == 2


@pytest.mark.parametrize("change", [{"email": "elsewhere@example.com"}, {"password": "Changed123"}])
def test_email_or_password_change_voids_a_pending_reset(bus, outbox, account, change):
    user, password = account
    bus.handle(RequestPasswordReset(email=user.email))
    token = next(m.params["token"] for m, _ in outbox if m.template == "reset_password")
    bus.handle(UpdateUser(user_id=user.id, old_password=password, **change))
    with pytest.raises(InvalidToken):
        bus.handle(ConfirmPasswordReset(token=token, password="Attacker1"))


def test_if_none_match_and_a_missing_resource_under_a_condition_are_stale(bus, account):
    user, _ = account
    with pytest.raises(StaleVersion):  # If-None-Match naming the current version
        bus.handle(
            UpdateUser(user_id=user.id, initials="V2", condition=VersionCondition(none_match=frozenset({1})))
        )
    with pytest.raises(StaleVersion):  # If-None-Match: * on an existing user
        bus.handle(DeleteUser(user_id=user.id, condition=VersionCondition(must_not_exist=True)))
    bus.handle(DeleteUser(user_id=user.id, condition=VersionCondition(none_match=frozenset({7}))))
    with pytest.raises(StaleVersion):  # If-Match: * on a user that is gone
        bus.handle(DeleteUser(user_id=user.id, condition=VersionCondition(must_exist=True)))
    with pytest.raises(NotFound):  # unconditional
        bus.handle(DeleteUser(user_id=user.id))
