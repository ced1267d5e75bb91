"""One contract for SubscriptionRepository, run against every backend (in-memory, SQLite,
PostgreSQL): what the subscriptions context may rely on, whatever stores it."""

from __future__ import annotations

import threading
from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from domain.errors import AlreadyExists, ConcurrentUpdate
from domain.subscriptions.model import Payment, Subscription, SubscriptionStatus, UserSubscriptions
from domain.subscriptions.plans import Plan
from domain.users.model import User
from tests.integration.backends import NOW, Backend

PLAN = Plan("pro", timedelta(days=30), 900, "EUR", frozenset({"reports"}))
LATER = NOW + timedelta(minutes=1)
# The backends where two units of work can be open at once (SQLite runs them one at a time).
CONCURRENT = pytest.mark.parametrize(
    "backend", ["memory", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


def add_users(backend: Backend, *users: User) -> None:
    with backend.uow() as uow:
        for user in users:
            uow.users.add(user)
        uow.commit()


def subscriptions_of(backend: Backend, user_id: UUID) -> UserSubscriptions | None:
    with backend.read_uow() as uow:
        return uow.subscriptions.of_user(user_id)


def register(backend: Backend, user_id: UUID, at=NOW, id: UUID | None = None) -> Subscription:
    with backend.uow() as uow:
        subs = uow.subscriptions.of_user(user_id, lock=True)
        subscription = subs.register(PLAN, at)
        subscription.id = id or subscription.id
        uow.subscriptions.save(subs)
        uow.commit()
    return subscription


def change(backend: Backend, user_id: UUID, how) -> UserSubscriptions:
    """Load the user's subscriptions under lock, apply `how(subs, uow)`, save and commit."""
    with backend.uow() as uow:
        subs = uow.subscriptions.of_user(user_id, lock=True)
        how(subs, uow)
        uow.subscriptions.save(subs)
        uow.commit()
    return subs


def payment_for(subscription: Subscription, reference: str | None = None, at=NOW) -> Payment:
    reference = reference or f"ref-{uuid4().hex}"
    return Payment(uuid4(), subscription.id, reference, PLAN.price, PLAN.currency, "provider:cb", at)


def record(backend: Backend, *payments: Payment) -> None:
    with backend.uow() as uow:
        for payment in payments:
            uow.subscriptions.add_payment(payment)
        uow.commit()


def apply(backend: Backend, payment: Payment, at=LATER) -> UserSubscriptions:
    def applying(subs, uow):
        assert subs.apply(uow.subscriptions.get_payment(payment.id), PLAN, at)

    return change(backend, user_of(backend, payment), applying)


def user_of(backend: Backend, payment: Payment) -> UUID:
    with backend.read_uow() as uow:
        return uow.subscriptions.get(payment.subscription_id).user_id


def stored_payment(backend: Backend, payment_id: UUID) -> Payment | None:
    with backend.read_uow() as uow:
        return uow.subscriptions.get_payment(payment_id)


# --- reading and writing ----------------------------------------------------------------------


def test_a_missing_user_has_no_subscriptions_and_a_new_one_has_none_yet(backend, make_user):
    user = make_user()
    add_users(backend, user)
    assert subscriptions_of(backend, uuid4()) is None
    assert subscriptions_of(backend, user.id) == UserSubscriptions(user.id, 0, None)
    with backend.read_uow() as uow:
        assert uow.subscriptions.get(uuid4()) is None


def test_a_registered_subscription_reads_back_whole_at_version_one(backend, make_user):
    user, other = make_user(), make_user()
    add_users(backend, user, other)
    subscription = register(backend, user.id)
    subs = subscriptions_of(backend, user.id)
    assert (subs.version, subs.current, subs.added, subs.changed) == (1, subscription, False, False)
    assert subs.current.created_at.utcoffset() == timedelta(0)
    with backend.read_uow() as uow:
        got = uow.subscriptions.get(subscription.id)
        got.status = SubscriptionStatus.CANCELLED  # a copy: changing it changes nothing stored
        assert uow.subscriptions.get(subscription.id) == subscription
    assert got is not subscription
    assert subscriptions_of(backend, other.id) == UserSubscriptions(other.id, 0, None)


def test_every_field_of_a_changed_subscription_is_written(backend, make_user):
    user = make_user()
    add_users(backend, user)
    subscription = register(backend, user.id)
    payment = payment_for(subscription)
    record(backend, payment)
    applying = apply(backend, payment)
    assert (applying.version, applying.changed, applying.applied) == (2, False, [])
    applied = applying.current
    cancelled = change(backend, user.id, lambda subs, uow: subs.cancel(subscription.id, LATER)).current
    assert (applied.status, cancelled.status, cancelled.version) == ("active", "cancelled", 3)
    subs = subscriptions_of(backend, user.id)
    assert subs.version == 3
    assert subs.current == cancelled
    assert (subs.current.activated_at, subs.current.current_period_end) == (LATER, LATER + PLAN.period)


def test_reads_in_a_unit_of_work_see_its_own_writes(backend, make_user):
    user = make_user()
    add_users(backend, user)
    with backend.uow() as uow:
        subs = uow.subscriptions.of_user(user.id, lock=True)
        subscription = subs.register(PLAN, NOW)
        uow.subscriptions.save(subs)
        assert (subs.version, subs.added, subs.changed) == (1, False, False)
        assert uow.subscriptions.of_user(user.id) == UserSubscriptions(user.id, 1, subscription)
        assert uow.subscriptions.get(subscription.id) == subscription
        payment = payment_for(subscription)
        uow.subscriptions.add_payment(payment)
        assert uow.subscriptions.get_payment(payment.id) == payment
        assert uow.subscriptions.find_payment(payment.reference) == payment
        subs.apply(payment, PLAN, LATER)  # applied before it is even committed
        uow.subscriptions.save(subs)
        applied = Payment(**{**vars(payment), "applied_at": LATER})
        assert uow.subscriptions.get_payment(payment.id) == applied
        uow.commit()
    assert stored_payment(backend, payment.id) == applied
    assert subscriptions_of(backend, user.id).version == 2


def test_the_newest_subscription_is_the_current_one(backend, make_user):
    user = make_user()
    add_users(backend, user)
    first = register(backend, user.id)
    change(backend, user.id, lambda subs, uow: subs.cancel(first.id, NOW))
    second = register(backend, user.id, at=LATER, id=UUID(int=1 << 126))
    subs = subscriptions_of(backend, user.id)
    assert (subs.version, subs.current) == (3, second)
    with backend.read_uow() as uow:
        assert uow.subscriptions.get(first.id).status == SubscriptionStatus.CANCELLED
    # Created at the same instant: the greater id is the newer, on every backend (written
    # second here, so neither the order of writing nor ascending ids would give it).
    change(backend, user.id, lambda subs, uow: subs.cancel(second.id, LATER))
    third = register(backend, user.id, at=LATER, id=UUID(int=(1 << 127) + 1))
    assert subscriptions_of(backend, user.id).current == third


def test_nothing_is_written_without_commit(backend, make_user):
    user = make_user()
    add_users(backend, user)
    kept = register(backend, user.id)
    with backend.uow() as uow:
        subs = uow.subscriptions.of_user(user.id, lock=True)
        subs.cancel(kept.id, LATER)
        uow.subscriptions.save(subs)
        payment = payment_for(kept)
        uow.subscriptions.add_payment(payment)
    with pytest.raises(RuntimeError), backend.uow() as uow:
        subs = uow.subscriptions.of_user(user.id, lock=True)
        subs.cancel(kept.id, LATER)
        uow.subscriptions.save(subs)
        raise RuntimeError("handler failed")
    assert subscriptions_of(backend, user.id) == UserSubscriptions(user.id, 1, kept)
    assert stored_payment(backend, payment.id) is None
    with backend.read_uow() as uow:
        assert uow.subscriptions.find_payment(payment.reference) is None


def test_an_explicit_rollback_discards_what_was_staged(backend, make_user):
    user = make_user()
    add_users(backend, user)
    with backend.uow() as uow:
        subs = uow.subscriptions.of_user(user.id, lock=True)
        payment = payment_for(subs.register(PLAN, NOW))
        uow.subscriptions.save(subs)
        uow.subscriptions.add_payment(payment)
        uow.rollback()
        uow.commit()  # nothing left to write
    assert subscriptions_of(backend, user.id) == UserSubscriptions(user.id, 0, None)
    assert stored_payment(backend, payment.id) is None


# --- concurrency -------------------------------------------------------------------------------


def test_saving_a_stale_version_conflicts_and_writes_nothing(backend, make_user):
    user = make_user()
    add_users(backend, user)
    subscription = register(backend, user.id)
    stale = subscriptions_of(backend, user.id)
    change(backend, user.id, lambda subs, uow: subs.cancel(subscription.id, NOW))
    payment = payment_for(subscription)
    stale.apply(payment, PLAN, LATER)
    with pytest.raises(ConcurrentUpdate), backend.uow() as uow:
        uow.subscriptions.save(stale)
        uow.commit()
    subs = subscriptions_of(backend, user.id)
    assert (subs.version, subs.current.status) == (2, SubscriptionStatus.CANCELLED)


@CONCURRENT
def test_of_two_open_units_of_work_on_one_version_the_second_to_save_loses(backend, make_user):
    user = make_user()
    add_users(backend, user)
    with backend.uow() as first, backend.uow() as second:
        ours, theirs = first.subscriptions.of_user(user.id), second.subscriptions.of_user(user.id)
        ours.register(PLAN, NOW)
        first.subscriptions.save(ours)
        first.commit()
        registered = theirs.register(PLAN, LATER)
        with pytest.raises(ConcurrentUpdate):
            second.subscriptions.save(theirs)
            second.commit()
    subs = subscriptions_of(backend, user.id)
    assert subs.version == 1 and subs.current != registered


def test_a_locked_user_waits_for_the_holder_to_end(backend, make_user):
    user = make_user()
    add_users(backend, user)
    seen: list[int] = []

    def other() -> None:
        with backend.uow() as uow:  # on SQLite it waits here, for the write lock
            seen.append(uow.subscriptions.of_user(user.id, lock=True).version)

    with backend.uow() as uow:
        subs = uow.subscriptions.of_user(user.id, lock=True)
        thread = threading.Thread(target=other)
        thread.start()
        thread.join(0.3)
        assert thread.is_alive() and seen == []
        subs.register(PLAN, NOW)
        uow.subscriptions.save(subs)
        uow.commit()
    thread.join(10)
    assert seen == [1]


# --- payments ----------------------------------------------------------------------------------


def test_a_payment_reference_is_recorded_once(backend, make_user):
    user = make_user()
    add_users(backend, user)
    subscription = register(backend, user.id)
    first = payment_for(subscription, "ref-1")
    record(backend, first)
    again, bystander = payment_for(subscription, "ref-1", at=LATER), payment_for(subscription)
    with pytest.raises(AlreadyExists):
        record(backend, bystander, again)
    with pytest.raises(AlreadyExists):  # twice in one unit of work
        record(backend, payment_for(subscription, "ref-2"), payment_for(subscription, "ref-2"))
    with backend.read_uow() as uow:
        assert uow.subscriptions.find_payment("ref-1") == first
        assert uow.subscriptions.find_payment("ref-2") is None
        assert uow.subscriptions.get_payment(again.id) is None
        assert uow.subscriptions.get_payment(bystander.id) is None


def test_a_payment_for_a_subscription_gone_with_its_user_conflicts(backend, make_user):
    user = make_user()
    add_users(backend, user)
    subscription = register(backend, user.id)
    with backend.uow() as uow:
        uow.users.remove(uow.users.get(user.id))
        uow.commit()
    payment = payment_for(subscription)
    with pytest.raises(ConcurrentUpdate):
        record(backend, payment)
    assert stored_payment(backend, payment.id) is None


@CONCURRENT
def test_payments_racing_a_duplicate_or_a_user_removal_lose(backend, make_user):
    user = make_user()
    add_users(backend, user)
    subscription = register(backend, user.id)
    ours, theirs = payment_for(subscription, "ref-1"), payment_for(subscription, "ref-1")
    with pytest.raises(AlreadyExists), backend.uow() as uow:
        assert uow.subscriptions.find_payment("ref-1") is None
        uow.subscriptions.add_payment(ours)
        record(backend, theirs)
        uow.commit()
    late = payment_for(subscription)
    with pytest.raises(ConcurrentUpdate), backend.uow() as uow:
        assert uow.subscriptions.get(subscription.id) is not None
        uow.subscriptions.add_payment(late)
        with backend.uow() as other:
            other.users.remove(other.users.get(user.id))
            other.commit()
        uow.commit()
    assert stored_payment(backend, ours.id) is None and stored_payment(backend, late.id) is None


def test_an_applied_payment_is_marked_and_the_subscription_activated(backend, make_user):
    user = make_user()
    add_users(backend, user)
    subscription = register(backend, user.id)
    payment = payment_for(subscription)
    record(backend, payment)
    assert stored_payment(backend, payment.id).applied_at is None
    apply(backend, payment)
    got = stored_payment(backend, payment.id)
    assert got == Payment(**{**vars(payment), "applied_at": LATER})
    assert got.applied_at.utcoffset() == timedelta(0)
    subs = subscriptions_of(backend, user.id)
    assert (subs.version, subs.current.status, subs.current.version) == (2, "active", 2)


# --- the sweep's queries -----------------------------------------------------------------------


def test_ended_periods_are_the_active_subscriptions_past_their_end_oldest_first(backend, make_user):
    users = [make_user() for _ in range(5)]
    add_users(backend, *users)
    late, early, running, pending, cancelled = users
    paid = [
        (late, NOW + timedelta(days=1)),
        (early, NOW),
        (running, NOW + timedelta(days=40)),
        (cancelled, NOW),
    ]
    for user, at in paid:
        payment = payment_for(register(backend, user.id))
        record(backend, payment)
        apply(backend, payment, at=at)
    register(backend, pending.id)
    ended = subscriptions_of(backend, cancelled.id).current
    change(backend, cancelled.id, lambda subs, uow: subs.cancel(ended.id, NOW))
    now = NOW + timedelta(days=31)
    with backend.read_uow() as uow:
        assert uow.subscriptions.ended_periods(now, 10) == [early.id, late.id]
        assert uow.subscriptions.ended_periods(now, 1) == [early.id]
        assert uow.subscriptions.ended_periods(NOW + PLAN.period, 10) == [early.id]  # ends at `now`
        assert uow.subscriptions.ended_periods(NOW, 10) == []


def test_unapplied_payments_of_open_subscriptions_oldest_first(backend, make_user):
    pending, active, cancelled = users = [make_user() for _ in range(3)]
    add_users(backend, *users)
    waiting = register(backend, pending.id)
    newer, older = payment_for(waiting, at=LATER), payment_for(waiting, at=NOW)
    running = register(backend, active.id)
    applied, unapplied = payment_for(running), payment_for(running, at=LATER + timedelta(seconds=1))
    ended = register(backend, cancelled.id)
    refund = payment_for(ended)
    record(backend, newer, older, applied, unapplied, refund)
    apply(backend, applied)
    change(backend, cancelled.id, lambda subs, uow: subs.cancel(ended.id, NOW))
    with backend.read_uow() as uow:
        assert uow.subscriptions.unapplied_payments(10) == [
            (older, pending.id),
            (newer, pending.id),
            (unapplied, active.id),
        ]
        assert uow.subscriptions.unapplied_payments(1) == [(older, pending.id)]


# --- users -------------------------------------------------------------------------------------


def test_removing_a_user_removes_their_subscriptions_and_payments(backend, make_user):
    user, other = make_user(), make_user()
    add_users(backend, user, other)
    subscription, kept = register(backend, user.id), register(backend, other.id)
    payment, kept_payment = payment_for(subscription), payment_for(kept)
    record(backend, payment, kept_payment)
    with backend.uow() as uow:
        uow.users.remove(uow.users.get(user.id))
        uow.commit()
    with backend.read_uow() as uow:
        assert uow.subscriptions.get(subscription.id) is None
        assert uow.subscriptions.get_payment(payment.id) is None
        assert uow.subscriptions.find_payment(payment.reference) is None
        assert uow.subscriptions.unapplied_payments(10) == [(kept_payment, other.id)]
    add_users(backend, make_user(id=user.id))  # the same id again does not bring them back
    assert subscriptions_of(backend, user.id) == UserSubscriptions(user.id, 0, None)
    assert subscriptions_of(backend, other.id).current == kept
