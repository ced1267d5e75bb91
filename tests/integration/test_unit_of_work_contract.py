"""One contract for UserRepository, AccountTokenRepository and UnitOfWork, run against every
backend (in-memory, SQLite, PostgreSQL): what the domain may rely on, whatever stores it."""

from __future__ import annotations

import threading
import time
from datetime import timedelta, timezone
from uuid import uuid4

import pytest

from domain.auth.events import UserLoggedIn
from domain.errors import AlreadyExists, ConcurrentUpdate
from domain.users.events import UserDeleted, UserRegistered, UserUpdated
from domain.users.model import User, UserStatus
from domain.users.queries import PageRequest, UserFilter
from domain.users.tokens import AccountToken, TokenPurpose
from tests.integration.backends import NOW, Backend, RecordingBus
from tests.support import races

CONFIRM, RESET = TokenPurpose.CONFIRM_EMAIL, TokenPurpose.RESET_PASSWORD


def save(backend: Backend, *users: User, tokens: tuple[AccountToken, ...] = ()) -> None:
    with backend.uow() as uow:
        for user in users:
            uow.users.add(user)
        for token in tokens:
            uow.tokens.add(token)
        uow.commit()
    backend.bus.events.clear()


def stored(backend: Backend, user_id) -> User | None:
    with backend.uow() as uow:
        return uow.users.get(user_id)


def token_for(user: User, purpose: TokenPurpose = CONFIRM, at=NOW) -> AccountToken:
    return AccountToken.issue(uuid4().hex + uuid4().hex, user.id, purpose, at)


def consumable(backend: Backend, token: AccountToken, now=NOW) -> bool:
    """Whether the token can be consumed now (checked without using it up)."""
    with backend.uow() as uow:
        return uow.tokens.consume(token.digest, token.purpose, now) is not None


# --- users: reading and writing -------------------------------------------------------------


def test_an_added_user_reads_back_whole(backend, make_user):
    user = make_user(
        confirmed=True, roles=frozenset({"user", "admin"}), status=UserStatus.DISABLED, version=7
    )
    save(backend, user)

    got = stored(backend, user.id)
    assert got is not user
    assert (
        got.id,
        got.email,
        got.initials,
        got.password_hash,
        got.confirmed,
        got.roles,
        got.status,
        got.version,
    ) == (
        user.id,
        user.email,
        user.initials,
        user.password_hash,
        True,
        {"user", "admin"},
        UserStatus.DISABLED,
        7,
    )
    assert got.created_at == user.created_at  # to the microsecond
    assert got.created_at.utcoffset() == timedelta(0)
    assert got.events == []


def test_a_creation_time_in_another_zone_reads_back_as_the_same_instant(backend, make_user):
    created = NOW.astimezone(timezone(timedelta(hours=-5)))
    user = make_user(created_at=created)
    save(backend, user)
    got = stored(backend, user.id).created_at
    assert got == created and got.utcoffset() is not None


def test_get_by_email_and_unknown_keys(backend, make_user):
    user, other = make_user(), make_user()
    save(backend, user, other)
    with backend.uow() as uow:
        assert uow.users.get_by_email(user.email).id == user.id
        assert uow.users.get_by_email("nobody@example.org") is None
        assert uow.users.get(uuid4()) is None


def test_identity_map_returns_one_object_per_user(backend, make_user):
    user, new = make_user(), make_user()
    save(backend, user)
    with backend.uow() as uow:
        first = uow.users.get(user.id)
        assert uow.users.get(user.id) is first
        assert uow.users.get_by_email(user.email) is first
        uow.users.add(new)
        assert uow.users.get(new.id) is new


def test_changes_to_a_loaded_user_are_written_on_commit(backend, make_user):
    user = make_user()
    save(backend, user)
    with backend.uow() as uow:
        loaded = uow.users.get(user.id)
        loaded.confirm()
        loaded.update(email="renamed@example.org")
        uow.commit()
    got = stored(backend, user.id)
    assert (got.email, got.confirmed, got.version) == ("renamed@example.org", False, 3)
    with backend.uow() as uow:
        assert uow.users.get_by_email(user.email) is None


def test_nothing_is_written_without_commit(backend, make_user):
    user, new = make_user(), make_user()
    token = token_for(user)
    save(backend, user)
    with backend.uow() as uow:
        uow.users.add(new)
        uow.users.get(user.id).update(initials="Changed")
        uow.tokens.add(token)
    assert stored(backend, new.id) is None
    assert stored(backend, user.id).initials == user.initials
    assert not consumable(backend, token)


def test_an_exception_rolls_everything_back(backend, make_user):
    user, new = make_user(), make_user()
    token = token_for(user)
    save(backend, user, tokens=(token,))
    with pytest.raises(RuntimeError), backend.uow() as uow:
        uow.users.add(new)
        uow.users.get(user.id).update(initials="Changed")
        assert uow.tokens.consume(token.digest, CONFIRM, NOW) is not None
        uow.record(logged_in(user))
        raise RuntimeError("handler failed")
    assert stored(backend, new.id) is None
    assert stored(backend, user.id).initials == user.initials
    assert consumable(backend, token)
    assert backend.bus.events == []


def test_a_removed_user_is_deleted_on_commit(backend, make_user):
    user, kept = make_user(), make_user()
    save(backend, user, kept)
    with backend.uow() as uow:
        uow.users.remove(uow.users.get(user.id))
        uow.commit()
    assert stored(backend, user.id) is None
    assert stored(backend, kept.id) is not None


def test_an_email_freed_by_a_removal_can_be_taken_in_the_same_unit_of_work(backend, make_user):
    user = make_user()
    save(backend, user)
    successor = make_user(email=user.email)
    with backend.uow() as uow:
        uow.users.remove(uow.users.get(user.id))
        uow.users.add(successor)
        uow.commit()
    with backend.uow() as uow:
        assert uow.users.get_by_email(user.email).id == successor.id


# --- events: the publish rule (ports.unit_of_work) -------------------------------------------


def logged_in(user: User, at=NOW) -> UserLoggedIn:
    """An event no aggregate records: a handler hands it to `uow.record`."""
    return UserLoggedIn(user_id=user.id, session_id=uuid4(), kind="login", occurred_at=at)


def test_events_are_published_on_leaving_the_block_after_commit_in_order_and_cleared(backend, make_user):
    user, new = make_user(), make_user()
    save(backend, user)
    visible: list[bool] = []

    class CheckingBus(RecordingBus):
        def publish(self, event):
            visible.append(stored(backend, event.user_id) is not None)  # committed already?
            super().publish(event)

    bus = CheckingBus()
    later = NOW + timedelta(minutes=1)
    with backend.uow(bus) as uow:
        loaded = uow.users.get(user.id)
        loaded.update(initials="Changed")
        updated = UserUpdated(user_id=user.id, email=user.email, occurred_at=later)
        again = UserUpdated(user_id=user.id, email=user.email, occurred_at=later)
        loaded.record(updated)
        loaded.record(again)
        registered = UserRegistered(user_id=new.id, email=new.email, occurred_at=NOW)
        new.record(registered)
        uow.users.add(new)
        uow.commit()
        # Where a handler writes its state groups: committed, and nothing published yet.
        assert bus.events == []
        assert stored(backend, new.id) is not None
    assert bus.events == [registered, updated, again]
    assert visible == [True, True, True]
    assert loaded.events == [] and new.events == []


def test_recorded_events_are_published_with_the_aggregates_in_the_order_recorded(backend, make_user):
    user, new = make_user(), make_user()
    save(backend, user)
    # Recorded out of time order: the order of recording is what holds.
    first = logged_in(user, NOW + timedelta(minutes=2))
    last = logged_in(new, NOW)
    with backend.uow() as uow:
        loaded = uow.users.get(user.id)
        updated = UserUpdated(user_id=user.id, email=user.email, occurred_at=NOW + timedelta(minutes=3))
        loaded.record(updated)
        uow.record(first)
        registered = UserRegistered(user_id=new.id, email=new.email, occurred_at=NOW + timedelta(minutes=1))
        new.record(registered)
        uow.users.add(new)
        uow.record(last)
        uow.commit()
        assert backend.bus.events == []
    assert backend.bus.events == [updated, first, registered, last]


def test_recorded_events_alone_are_published_after_an_empty_commit(backend, make_user):
    user = make_user()
    save(backend, user)
    events = [logged_in(user), logged_in(user)]
    with backend.uow() as uow:
        for event in events:
            uow.record(event)
        uow.commit()
    assert backend.bus.events == events


def test_events_of_a_removed_user_are_published(backend, make_user):
    user = make_user()
    save(backend, user)
    with backend.uow() as uow:
        loaded = uow.users.get(user.id)
        deleted = UserDeleted(user_id=user.id, email=user.email, occurred_at=NOW)
        loaded.record(deleted)
        uow.users.remove(loaded)
        uow.commit()
    assert backend.bus.events == [deleted]


def test_no_events_without_commit(backend, make_user):
    user = make_user()
    with backend.uow() as uow:
        user.record(UserRegistered(user_id=user.id, email=user.email, occurred_at=NOW))
        uow.users.add(user)
        uow.record(logged_in(user))
    assert backend.bus.events == []


def test_a_rollback_discards_what_was_recorded(backend, make_user):
    user = make_user()
    save(backend, user)
    kept = logged_in(user)
    with backend.uow() as uow:
        uow.users.get(user.id).record(UserUpdated(user_id=user.id, email=user.email, occurred_at=NOW))
        uow.record(logged_in(user))
        uow.rollback()
        uow.record(kept)
        uow.commit()
    assert backend.bus.events == [kept]


def test_a_failed_commit_publishes_nothing(backend, make_user):
    user = make_user()
    save(backend, user)
    with pytest.raises(AlreadyExists), backend.uow() as uow:
        twin = make_user(email=user.email)
        twin.record(UserRegistered(user_id=twin.id, email=twin.email, occurred_at=NOW))
        uow.users.add(twin)
        uow.record(logged_in(user))
        uow.commit()
    assert backend.bus.events == []


def test_a_block_that_committed_and_then_raised_still_publishes_what_it_committed(backend, make_user):
    user = make_user()
    save(backend, user)
    committed = logged_in(user)
    with pytest.raises(RuntimeError, match="after commit"), backend.uow() as uow:
        loaded = uow.users.get(user.id)
        loaded.update(initials="Changed")
        updated = UserUpdated(user_id=user.id, email=user.email, occurred_at=NOW)
        loaded.record(updated)
        uow.record(committed)
        uow.commit()
        uow.record(logged_in(user))  # after the commit, never committed: discarded
        raise RuntimeError("raised after commit")
    assert backend.bus.events == [updated, committed]
    assert stored(backend, user.id).initials == "Changed"


def test_reentering_the_same_unit_of_work_starts_a_fresh_collection(backend, make_user):
    user = make_user()
    save(backend, user)
    uow = backend.uow()
    first, second = logged_in(user), logged_in(user)
    with uow:
        uow.record(logged_in(user))  # not committed: must not leak into the next block
    with uow:
        uow.record(first)
        uow.commit()
        uow.record(logged_in(user))  # recorded after the commit: nor this one
    assert backend.bus.events == [first]
    with uow:
        uow.record(second)
        uow.commit()
    assert backend.bus.events == [first, second]  # the first block's event, once
    with uow:
        uow.commit()
    assert backend.bus.events == [first, second]


def test_a_subscriber_can_write_in_a_unit_of_work_of_its_own(backend, make_user):
    """Events leave once the block has let go of its transaction and locks: a consumer's own
    unit of work (on SQLite, the one writer) does not wait for the publisher's."""
    user = make_user()
    save(backend, user)
    outcomes: list[str] = []

    class WritingBus(RecordingBus):
        def publish(self, event):
            super().publish(event)
            with backend.uow() as uow:
                uow.users.get(user.id, lock=True).update(initials="Consumer")
                uow.commit()
            outcomes.append("written")

    with backend.uow(WritingBus()) as uow:
        uow.users.get(user.id, lock=True).update(initials="Handler")
        uow.record(logged_in(user))
        uow.commit()
    assert outcomes == ["written"]
    assert stored(backend, user.id).initials == "Consumer"


# --- concurrency -----------------------------------------------------------------------------


def race(backend: Backend, user_id, first, second) -> Exception | None:
    """`first` loads the user; then `second` changes it in another unit of work (in a thread)
    and commits; then `first` changes its copy and commits. Returns what that commit raised.

    On SQLite `second` cannot start while `first` is open: it runs after `first` has ended.
    """
    loaded, done, failures = threading.Event(), threading.Event(), []

    def other() -> None:
        loaded.wait(10)
        try:
            with backend.uow() as uow:
                second(uow, uow.users.get(user_id))
                uow.commit()
        except Exception as error:  # reported by the assertion below
            failures.append(error)
        finally:
            done.set()

    thread = threading.Thread(target=other)
    thread.start()
    outcome = None
    try:
        with backend.uow() as uow:
            user = uow.users.get(user_id)
            user.record(UserUpdated(user_id=user_id, email=user.email, occurred_at=NOW))
            loaded.set()
            serial = backend.serialises_units_of_work
            assert done.wait(0.5 if serial else 10) is not serial
            first(uow, user)
            uow.commit()
    except ConcurrentUpdate as error:
        outcome = error
    finally:
        loaded.set()
        thread.join(10)
    assert failures == []
    return outcome


def test_concurrent_updates_never_lose_a_write(backend, make_user):
    user = make_user()
    save(backend, user)
    outcome = race(
        backend,
        user.id,
        first=lambda uow, u: u.update(initials="First"),
        second=lambda uow, u: u.update(password_hash="second-hash"),
    )
    got = stored(backend, user.id)
    assert got.password_hash == "second-hash"
    if backend.serialises_units_of_work:  # one after the other: both written
        assert outcome is None
        assert (got.initials, got.version, len(backend.bus.events)) == ("First", 3, 1)
    else:  # the later writer loses, and none of its changes or events get through
        assert isinstance(outcome, ConcurrentUpdate)
        assert (got.initials, got.version, backend.bus.events) == (user.initials, 2, [])


def test_removing_a_user_changed_concurrently_conflicts(backend, make_user):
    user = make_user()
    save(backend, user)
    outcome = race(
        backend,
        user.id,
        first=lambda uow, u: uow.users.remove(u),
        second=lambda uow, u: u and u.update(initials="Second"),
    )
    got = stored(backend, user.id)
    if backend.serialises_units_of_work:
        assert outcome is None and got is None
    else:
        assert isinstance(outcome, ConcurrentUpdate)
        assert (got.initials, got.version) == ("Second", 2)


def test_changing_a_user_removed_concurrently_conflicts(backend, make_user):
    user = make_user()
    save(backend, user)
    outcome = race(
        backend,
        user.id,
        first=lambda uow, u: u.update(initials="First"),
        second=lambda uow, u: uow.users.remove(u),
    )
    assert stored(backend, user.id) is None
    assert (outcome is None) is backend.serialises_units_of_work


# --- unique email ----------------------------------------------------------------------------


def test_adding_a_taken_email_writes_nothing(backend, make_user):
    user = make_user()
    save(backend, user)
    duplicate, bystander = make_user(email=user.email), make_user()
    token = token_for(bystander)
    with pytest.raises(AlreadyExists), backend.uow() as uow:
        uow.users.add(bystander)
        uow.tokens.add(token)
        duplicate.record(UserRegistered(user_id=duplicate.id, email=user.email, occurred_at=NOW))
        uow.users.add(duplicate)
        uow.commit()
    assert stored(backend, duplicate.id) is None
    assert stored(backend, bystander.id) is None
    assert not consumable(backend, token)
    assert backend.bus.events == []


def test_changing_to_a_taken_email_writes_nothing(backend, make_user):
    user, other = make_user(), make_user()
    save(backend, user, other)
    with pytest.raises(AlreadyExists), backend.uow() as uow:
        loaded = uow.users.get(other.id)
        loaded.update(initials="Changed")
        loaded.update(email=user.email)
        uow.commit()
    got = stored(backend, other.id)
    assert (got.email, got.initials, got.version) == (other.email, other.initials, 1)


# --- listing ---------------------------------------------------------------------------------


def test_list_filters_orders_and_pages(backend, make_user):
    users = [make_user(confirmed=i % 2 == 0) for i in range(5)]
    twin = make_user(created_at=users[2].created_at)  # same time: ordered by id
    save(backend, *users, twin)
    expected = sorted([*users, twin], key=lambda u: (u.created_at, str(u.id)))

    with backend.uow() as uow:
        pages = [uow.users.list(UserFilter(), PageRequest(page=n, size=4)) for n in (1, 2, 3)]
        confirmed = uow.users.list(UserFilter(confirmed=True), PageRequest())
        unconfirmed = uow.users.list(UserFilter(confirmed=False), PageRequest())
        by_email = uow.users.list(UserFilter(email=users[3].email), PageRequest())
        nobody = uow.users.list(UserFilter(email=users[3].email, confirmed=True), PageRequest())

    assert [p.total for p in pages] == [6, 6, 6]
    assert [u.id for p in pages for u in p.items] == [u.id for u in expected]
    assert [len(p.items) for p in pages] == [4, 2, 0]
    assert pages[1].request == PageRequest(page=2, size=4)
    assert confirmed.total == 3 + twin.confirmed and all(u.confirmed for u in confirmed.items)
    assert unconfirmed.total == 2 + (not twin.confirmed)
    assert [u.id for u in by_email.items] == [users[3].id] and by_email.total == 1
    assert (nobody.items, nobody.total) == ([], 0)
    first = pages[0].items[0]
    assert (first.email, first.created_at, first.roles) == (
        expected[0].email,
        expected[0].created_at,
        expected[0].roles,
    )


# --- account tokens --------------------------------------------------------------------------


def test_a_token_is_consumed_once(backend, make_user):
    user = make_user()
    token = token_for(user)
    save(backend, user, tokens=(token,))
    later = NOW + timedelta(minutes=5)
    with backend.uow() as uow:
        used = uow.tokens.consume(token.digest, CONFIRM, later)
        uow.commit()
    assert (used.digest, used.user_id, used.purpose) == (token.digest, user.id, CONFIRM)
    assert (used.created_at, used.expires_at, used.used_at) == (NOW, token.expires_at, later)
    assert used.used_at.utcoffset() == timedelta(0)
    assert not consumable(backend, token, later)


def test_a_token_added_in_the_unit_of_work_can_be_consumed_in_it(backend, make_user):
    user = make_user()
    token = token_for(user)
    with backend.uow() as uow:
        uow.users.add(user)  # written at commit, after the token: the token must still count
        uow.tokens.add(token)
        assert uow.tokens.consume(token.digest, CONFIRM, NOW) is not None
        assert uow.tokens.consume(token.digest, CONFIRM, NOW) is None
        uow.commit()
    assert not consumable(backend, token)


def test_expired_wrong_purpose_and_unknown_tokens_are_not_consumed(backend, make_user):
    user = make_user()
    token = token_for(user, RESET)
    save(backend, user, tokens=(token,))
    with backend.uow() as uow:
        assert uow.tokens.consume(token.digest, RESET, token.expires_at) is None
        assert uow.tokens.consume(token.digest, RESET, token.expires_at + timedelta(days=1)) is None
        assert uow.tokens.consume(token.digest, CONFIRM, NOW) is None
        assert uow.tokens.consume("0" * 64, RESET, NOW) is None
        uow.commit()
    assert consumable(backend, token, token.expires_at - timedelta(microseconds=1))


def test_a_rolled_back_consumption_gives_the_token_back(backend, make_user):
    user = make_user()
    token = token_for(user)
    save(backend, user, tokens=(token,))
    with backend.uow() as uow:
        assert uow.tokens.consume(token.digest, CONFIRM, NOW) is not None
    assert consumable(backend, token)


def test_a_token_added_and_consumed_without_commit_leaves_nothing(backend, make_user):
    user = make_user()
    save(backend, user)
    token = token_for(user)
    with backend.uow() as uow:
        uow.tokens.add(token)
        assert uow.tokens.consume(token.digest, CONFIRM, NOW) is not None
    assert not consumable(backend, token)
    with backend.uow() as uow:
        assert uow.tokens.last_issued_at(user.id, CONFIRM) is None


def test_revoke_ends_the_unused_tokens_of_one_purpose(backend, make_user):
    user, other = make_user(), make_user()
    confirm, confirm_new, reset, others = (
        token_for(user),
        token_for(user),
        token_for(user, RESET),
        token_for(other),
    )
    save(backend, user, other, tokens=(confirm, reset, others))
    with backend.uow() as uow:
        uow.tokens.add(confirm_new)  # staged in this unit of work: revoked as well
        uow.tokens.revoke(user.id, CONFIRM, NOW)
        uow.commit()
    assert not consumable(backend, confirm)
    assert not consumable(backend, confirm_new)
    assert consumable(backend, reset)
    assert consumable(backend, others)


def test_revoke_is_rolled_back_without_commit(backend, make_user):
    user = make_user()
    token = token_for(user)
    save(backend, user, tokens=(token,))
    with backend.uow() as uow:
        uow.tokens.revoke(user.id, CONFIRM, NOW)
    assert consumable(backend, token)


def test_last_issued_at_is_the_newest_token_of_the_user_and_purpose(backend, make_user):
    user, other = make_user(), make_user()
    newest = NOW + timedelta(seconds=30)
    save(
        backend,
        user,
        other,
        tokens=(
            token_for(user, at=NOW),
            token_for(user, at=newest),
            token_for(user, RESET, at=newest + timedelta(hours=1)),
            token_for(other, at=newest + timedelta(hours=2)),
        ),
    )
    with backend.uow() as uow:
        assert uow.tokens.last_issued_at(user.id, CONFIRM) == newest
        assert uow.tokens.last_issued_at(user.id, CONFIRM).utcoffset() == timedelta(0)
        assert uow.tokens.last_issued_at(other.id, RESET) is None
        uow.tokens.add(token_for(user, at=newest + timedelta(minutes=1)))
        assert uow.tokens.last_issued_at(user.id, CONFIRM) == newest + timedelta(minutes=1)


def test_removing_a_user_removes_its_tokens(backend, make_user):
    user, other = make_user(), make_user()
    token, kept = token_for(user, RESET), token_for(other, RESET)
    save(backend, user, other, tokens=(token, kept))
    with backend.uow() as uow:
        uow.users.remove(uow.users.get(user.id))
        uow.commit()
    assert not consumable(backend, token)
    assert consumable(backend, kept)
    save(backend, make_user(id=user.id))  # the same id again does not bring them back
    assert not consumable(backend, token)


def test_removing_a_user_removes_tokens_issued_in_the_same_unit_of_work(backend, make_user):
    user = make_user()
    save(backend, user)
    token = token_for(user)
    with backend.uow() as uow:
        uow.tokens.add(token)
        uow.users.remove(uow.users.get(user.id))
        uow.commit()
    save(backend, make_user(id=user.id))
    assert not consumable(backend, token)


def test_concurrent_consumers_of_one_token_have_one_winner(backend, make_user):
    user = make_user()
    tokens = [token_for(user) for _ in range(5)]
    save(backend, user, tokens=tuple(tokens))
    for token in tokens:

        def consume() -> AccountToken | None:
            with backend.uow() as uow:
                used = uow.tokens.consume(token.digest, CONFIRM, NOW)
                time.sleep(0.02)  # hold the transaction open so the other consumer overlaps it
                uow.commit()
            return used

        outcome = races.race(consume, consume, join_within=10)
        assert outcome.errors == []
        assert len(outcome.results) == 2
        assert sum(used is not None for used in outcome.results) == 1


def test_a_user_removed_in_a_unit_of_work_is_gone_from_it(backend, make_user):
    user = make_user()
    save(backend, user)
    with backend.uow() as uow:
        uow.users.remove(uow.users.get(user.id))
        assert uow.users.get(user.id) is None
        assert uow.users.get_by_email(user.email) is None


def test_a_users_update_writes_each_of_its_fields_and_no_other_contexts_column(make_user):
    """The SQL update names its columns: a field added to the user's row must be named there
    too, and the sessions' and subscriptions' columns on the row stay theirs to write."""
    from adapters.sqlalchemy.users import _CHANGEABLE, _to_row

    assert set(_to_row(make_user())) - {"id", "created_at"} == set(_CHANGEABLE)
    assert not {"session_version", "subscription_version", "last_login_at"} & set(_CHANGEABLE)
