"""Subscriptions (DESIGN §3, §4) through the real composition root on the in-memory adapters:
registering, payments and the activation their consumer does, cancelling, entitlement, the
sweep, and the subscription group of UserState that the owners (and only they) write."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest

from domain.auth.commands import Login
from domain.auth.queries import Authenticate
from domain.conditions import VersionCondition
from domain.errors import AlreadyExists, Conflict, InvalidInput, NotFound, StaleVersion
from domain.session_state.model import SubscriptionSummary
from domain.subscriptions.commands import (
    CancelSubscription,
    ConfirmPayment,
    RegisterSubscription,
    SweepSubscriptions,
)
from domain.subscriptions.events import (
    PaymentConfirmed,
    SubscriptionActivated,
    SubscriptionRegistered,
    UserSubscriptionStatusChanged,
)
from domain.subscriptions.model import Payment, SubscriptionStatus
from domain.subscriptions.queries import CheckEntitlement, GetSubscription
from tests import factories

MONTH = timedelta(days=30)


def matching(*versions: int) -> VersionCondition:
    """If-Match naming these versions."""
    return VersionCondition(match=frozenset(versions))


@pytest.fixture
def pending(bus, account):
    """The account's monthly subscription, registered and not yet paid."""
    return bus.handle(RegisterSubscription(user_id=account[0].id, plan="monthly"))


def pay(bus, subscription, reference: str | None = None, **overrides):
    data = {"amount": 900, "currency": "EUR", "source": "admin:test", **overrides}
    reference = reference or f"pay_{uuid4().hex}"
    return bus.handle(ConfirmPayment(subscription_id=subscription.id, reference=reference, **data))


def read(bus, subscription):
    return bus.handle(GetSubscription(subscription.id, None))


def stored(container, user_id):
    return container.caching.states().read(user_id, reader="test")


def summary_in_state(container, user_id):
    """The subscription group of the user's state: (version, summary)."""
    group = stored(container, user_id).subscription
    return group.version, group.value


def entitled(bus, summary, feature: str = "premium") -> bool:
    return bus.handle(CheckEntitlement(summary, feature))


# RegisterSubscription


def test_registering_gives_a_pending_subscription_and_announces_it(bus, clock, events, account):
    user, _ = account
    subscription = bus.handle(RegisterSubscription(user_id=user.id, plan="monthly"))
    assert (subscription.user_id, subscription.plan, subscription.status) == (
        user.id,
        "monthly",
        SubscriptionStatus.PENDING,
    )
    assert (subscription.created_at, subscription.current_period_end, subscription.activated_at) == (
        clock.now(),
        None,
        None,
    )
    assert read(bus, subscription) == subscription
    [registered] = events.of(SubscriptionRegistered)
    assert (registered.user_id, registered.subscription_id, registered.plan) == (
        user.id,
        subscription.id,
        "monthly",
    )
    assert events.of(UserSubscriptionStatusChanged) == []


def test_an_unknown_plan_is_invalid_input_naming_the_choices(bus, events, account):
    with pytest.raises(InvalidInput) as refused:
        bus.handle(RegisterSubscription(user_id=account[0].id, plan="weekly"))
    assert list(refused.value.errors) == ["plan"]
    [message] = refused.value.errors["plan"]
    assert message.text.format(**message.params) == "Must be one of: monthly, yearly."
    assert events.of(SubscriptionRegistered) == []


def test_a_user_has_one_pending_or_active_subscription_at_a_time(bus, account, pending):
    user_id = account[0].id
    with pytest.raises(Conflict):
        bus.handle(RegisterSubscription(user_id=user_id, plan="yearly"))
    pay(bus, pending)
    with pytest.raises(Conflict):
        bus.handle(RegisterSubscription(user_id=user_id, plan="monthly"))
    assert read(bus, pending).status == SubscriptionStatus.ACTIVE


def test_a_new_subscription_is_allowed_once_the_last_one_is_cancelled(bus, account, pending):
    bus.handle(CancelSubscription(subscription_id=pending.id, user_id=account[0].id))
    again = bus.handle(RegisterSubscription(user_id=account[0].id, plan="yearly"))
    assert again.id != pending.id
    assert (again.plan, again.status) == ("yearly", SubscriptionStatus.PENDING)
    assert read(bus, pending).status == SubscriptionStatus.CANCELLED


def test_the_handler_writes_the_subscription_group_before_it_announces_it(container, bus, account):
    user_id, seen = account[0].id, []
    # What a consumer would find in the store when the event reaches it.
    container.event_bus().subscribe(
        SubscriptionRegistered, lambda e: seen.append(stored(container, e.user_id))
    )

    subscription = bus.handle(RegisterSubscription(user_id=user_id, plan="monthly"))

    pending = SubscriptionSummary("monthly", "pending", None, subscription.id)
    assert summary_in_state(container, user_id) == (1, pending)
    [at_publication] = seen
    assert at_publication is not None and at_publication.subscription.value == pending
    assert container.event_bus().dead_letters == []


# ConfirmPayment, PaymentConfirmed and the activation


def test_a_payment_activates_the_subscription_for_one_period(container, bus, clock, events, account, pending):
    user_id, now = account[0].id, clock.now()
    payment = pay(bus, pending, "pay_first")

    assert (payment.subscription_id, payment.reference, payment.amount, payment.currency) == (
        pending.id,
        "pay_first",
        900,
        "EUR",
    )
    active = read(bus, pending)
    assert active.status == SubscriptionStatus.ACTIVE
    assert (active.activated_at, active.current_period_start, active.current_period_end) == (
        now,
        now,
        now + MONTH,
    )
    assert active.version > pending.version
    [confirmed] = events.of(PaymentConfirmed)
    assert (confirmed.user_id, confirmed.subscription_id, confirmed.payment_id) == (
        user_id,
        pending.id,
        payment.id,
    )
    [activated] = events.of(SubscriptionActivated)
    assert (activated.subscription_id, activated.plan, activated.current_period_end) == (
        pending.id,
        "monthly",
        now + MONTH,
    )
    [changed] = events.of(UserSubscriptionStatusChanged)
    assert (changed.status, changed.current_period_end, changed.version) == ("active", now + MONTH, 2)

    version, summary = summary_in_state(container, user_id)
    assert summary == SubscriptionSummary("monthly", "active", now + MONTH, pending.id)
    assert version == 2  # newer than the pending summary's 1
    assert container.event_bus().dead_letters == []


def test_a_second_payment_extends_the_period_from_its_old_end(
    container, bus, clock, events, account, pending
):
    start = clock.now()
    pay(bus, pending, "pay_first")
    clock.advance(days=10)  # paid early: the current period runs on, a month longer

    pay(bus, pending, "pay_second")

    renewed = read(bus, pending)
    assert renewed.status == SubscriptionStatus.ACTIVE
    assert (renewed.activated_at, renewed.current_period_start, renewed.current_period_end) == (
        start,
        start,
        start + 2 * MONTH,
    )
    assert len(events.of(SubscriptionActivated)) == 1  # activated once, extended since
    assert [e.current_period_end for e in events.of(UserSubscriptionStatusChanged)] == [
        start + MONTH,
        start + 2 * MONTH,
    ]
    assert summary_in_state(container, account[0].id) == (
        3,
        SubscriptionSummary("monthly", "active", start + 2 * MONTH, pending.id),
    )


def test_a_payment_reference_is_recorded_once(container, bus, events, account, pending):
    pay(bus, pending, "pay_once")
    before, state_before = read(bus, pending), stored(container, account[0].id)
    published = len(events.events)

    with pytest.raises(AlreadyExists, match="already recorded"):
        pay(bus, pending, "pay_once")

    assert read(bus, pending) == before
    assert stored(container, account[0].id) == state_before
    assert len(events.events) == published


@pytest.mark.parametrize("wrong", [{"amount": 899}, {"amount": 9000}, {"currency": "USD"}])
def test_a_payment_of_the_wrong_price_is_invalid_input_on_amount(
    container, bus, events, account, pending, wrong
):
    with pytest.raises(InvalidInput) as refused:
        pay(bus, pending, **wrong)
    assert list(refused.value.errors) == ["amount"]
    [message] = refused.value.errors["amount"]
    assert message.params == {"amount": 900, "currency": "EUR"}
    assert read(bus, pending) == pending
    assert events.of(PaymentConfirmed) == []
    assert summary_in_state(container, account[0].id)[1].status == "pending"


def test_the_currency_is_compared_case_insensitively(bus, pending):
    pay(bus, pending, currency="eur")
    assert read(bus, pending).status == SubscriptionStatus.ACTIVE


def test_a_payment_for_a_cancelled_subscription_is_a_conflict(bus, events, account, pending):
    cancelled = bus.handle(CancelSubscription(subscription_id=pending.id, user_id=account[0].id))
    with pytest.raises(Conflict):
        pay(bus, pending)
    assert read(bus, pending) == cancelled
    assert events.of(PaymentConfirmed) == []


def test_a_payment_for_an_unknown_subscription_is_not_found(bus, pending):
    with pytest.raises(NotFound):
        bus.handle(
            ConfirmPayment(subscription_id=uuid4(), reference="pay_x", amount=900, currency="EUR", source="t")
        )


def test_a_redelivered_payment_confirmation_is_applied_once(container, bus, clock, events, account, pending):
    pay(bus, pending)
    after_first, state_after_first = read(bus, pending), stored(container, account[0].id)
    [confirmed] = events.of(PaymentConfirmed)
    clock.advance(days=1)

    container.event_bus().publish(confirmed)

    assert read(bus, pending) == after_first
    assert after_first.current_period_end == after_first.activated_at + MONTH  # not extended twice
    assert stored(container, account[0].id) == state_after_first
    assert len(events.of(SubscriptionActivated)) == len(events.of(UserSubscriptionStatusChanged)) == 1
    assert container.event_bus().dead_letters == []


# CancelSubscription


def test_users_cancel_their_own_subscription_and_the_state_follows(
    container, bus, clock, events, account, pending
):
    user_id = account[0].id
    pay(bus, pending)
    clock.advance(days=3)

    cancelled = bus.handle(CancelSubscription(subscription_id=pending.id, user_id=user_id))

    assert (cancelled.status, cancelled.cancelled_at) == (SubscriptionStatus.CANCELLED, clock.now())
    assert read(bus, pending) == cancelled
    changed = events.of(UserSubscriptionStatusChanged)[-1]
    assert (changed.status, changed.version) == ("cancelled", 3)
    version, summary = summary_in_state(container, user_id)
    assert (version, summary.status, summary.subscription_id) == (3, "cancelled", pending.id)
    assert container.event_bus().dead_letters == []


def test_another_users_subscription_is_not_found_and_stays_as_it_was(bus, faker, pending):
    other = bus.handle(factories.register_user(faker))
    with pytest.raises(NotFound):
        bus.handle(CancelSubscription(subscription_id=pending.id, user_id=other.id))
    with pytest.raises(NotFound):
        bus.handle(GetSubscription(pending.id, other.id))
    assert read(bus, pending) == pending


def test_an_admin_may_cancel_anyones_subscription(container, bus, account, pending):
    cancelled = bus.handle(CancelSubscription(subscription_id=pending.id, user_id=None))
    assert cancelled.status == SubscriptionStatus.CANCELLED
    assert summary_in_state(container, account[0].id)[1].status == "cancelled"


def test_cancelling_twice_changes_nothing_the_second_time(container, bus, clock, events, account, pending):
    command = CancelSubscription(subscription_id=pending.id, user_id=account[0].id)
    first = bus.handle(command)
    state = stored(container, account[0].id)
    clock.advance(hours=1)

    second = bus.handle(command)

    assert second == first == read(bus, pending)
    assert stored(container, account[0].id) == state
    # The summary is published again, at the same version: the second may be the retry of a
    # cancel answered 503 whose state write was lost, which it then puts right.
    once, again = events.of(UserSubscriptionStatusChanged)
    assert (again.version, again.status) == (once.version, once.status)


def test_a_retried_cancel_reaches_the_state(container, bus, account, pending):
    states = container.caching.states()
    command = CancelSubscription(subscription_id=pending.id, user_id=account[0].id)
    before = summary_in_state(container, account[0].id)[1].status
    states.write = lambda state: frozenset()  # the first cancel's state write is lost
    try:
        bus.handle(command)
    finally:
        del states.write
    assert summary_in_state(container, account[0].id)[1].status == before != "cancelled"

    bus.handle(command)
    assert summary_in_state(container, account[0].id)[1].status == "cancelled"


def test_cancelling_with_a_stale_expected_version_is_refused(bus, account, pending):
    user_id = account[0].id
    pay(bus, pending)  # version 2 now
    with pytest.raises(StaleVersion):
        bus.handle(CancelSubscription(subscription_id=pending.id, user_id=user_id, condition=matching(1)))
    assert read(bus, pending).status == SubscriptionStatus.ACTIVE

    current = read(bus, pending).version
    cancelled = bus.handle(
        CancelSubscription(
            subscription_id=pending.id,
            user_id=user_id,
            condition=matching(current),
        )
    )
    assert (cancelled.status, cancelled.version) == (SubscriptionStatus.CANCELLED, current + 1)
    with pytest.raises(StaleVersion):  # the validator the user read before cancelling
        bus.handle(
            CancelSubscription(
                subscription_id=pending.id,
                user_id=user_id,
                condition=matching(current),
            )
        )


# Entitlement


def test_only_an_active_subscription_within_its_period_entitles(bus, clock, account, pending):
    assert not entitled(bus, None)
    assert not entitled(bus, pending.summary())

    pay(bus, pending)
    active = read(bus, pending).summary()
    assert entitled(bus, active)
    assert not entitled(bus, active, "gold")  # not in the plan

    clock.advance(days=29, hours=23, minutes=59, seconds=59)
    assert entitled(bus, active)
    clock.advance(seconds=1)  # at the period's end, before any sweep
    assert not entitled(bus, active)
    clock.advance(days=1)
    assert not entitled(bus, active)


def test_a_cancelled_subscription_does_not_entitle(bus, account, pending):
    pay(bus, pending)
    cancelled = bus.handle(CancelSubscription(subscription_id=pending.id, user_id=account[0].id))
    assert cancelled.current_period_end is not None
    assert not entitled(bus, cancelled.summary())


# SweepSubscriptions


def test_the_sweep_expires_what_ran_out_once(container, bus, clock, events, account, pending):
    user_id = account[0].id
    pay(bus, pending)
    assert bus.handle(SweepSubscriptions()).expired == 0  # still paid for
    clock.advance(days=30)

    result = bus.handle(SweepSubscriptions())

    assert (result.expired, result.payments_retried) == (1, 0)
    expired = read(bus, pending)
    assert expired.status == SubscriptionStatus.EXPIRED
    version, summary = summary_in_state(container, user_id)
    assert (version, summary.status) == (3, "expired")
    assert events.of(UserSubscriptionStatusChanged)[-1].status == "expired"
    assert bus.handle(SweepSubscriptions()).expired == 0
    assert read(bus, pending) == expired
    # An expired subscription cannot be paid for, and makes room for a new one.
    with pytest.raises(Conflict):
        pay(bus, pending)
    assert (
        bus.handle(RegisterSubscription(user_id=user_id, plan="monthly")).status == SubscriptionStatus.PENDING
    )


def record_unapplied(container, subscription, clock, reference: str = "pay_lost") -> Payment:
    """A payment recorded whose activation never ran (its consumer failed, the process stopped)."""
    payment = Payment(uuid4(), subscription.id, reference, 900, "EUR", "admin:test", clock.now())
    with container.storage.uow() as uow:
        uow.subscriptions.add_payment(payment)
        uow.commit()
    return payment


def test_the_sweep_applies_a_payment_left_unapplied(container, bus, clock, events, account, pending):
    record_unapplied(container, pending, clock)
    assert read(bus, pending).status == SubscriptionStatus.PENDING
    clock.advance(minutes=5)

    result = bus.handle(SweepSubscriptions())

    assert (result.expired, result.payments_retried) == (0, 1)
    active = read(bus, pending)
    assert (active.status, active.current_period_end) == (SubscriptionStatus.ACTIVE, clock.now() + MONTH)
    assert summary_in_state(container, account[0].id)[1].status == "active"
    assert len(events.of(SubscriptionActivated)) == 1
    assert bus.handle(SweepSubscriptions()).payments_retried == 0
    assert read(bus, pending) == active


def test_a_renewal_paid_in_time_but_left_unapplied_is_not_lost_to_the_sweep(
    container, bus, clock, account, pending
):
    """The payment was received before the period ended; only its consumer failed. The sweep
    that finds both the ended period and the unapplied payment must not expire the
    subscription the user paid for (and leave the payment to be refunded)."""
    pay(bus, pending)
    clock.advance(days=29)
    record_unapplied(container, pending, clock, "pay_renewal")
    clock.advance(days=2)  # the consumer's retry comes with the next sweep, after the end

    bus.handle(SweepSubscriptions())

    renewed = read(bus, pending)
    assert renewed.status == SubscriptionStatus.ACTIVE
    assert renewed.current_period_end > clock.now()
    assert summary_in_state(container, account[0].id)[1].status == "active"


# The subscription group and authentication


def test_authenticate_carries_the_subscription_and_rebuilds_it_from_the_database(
    container, bus, clock, account, pending
):
    user, password = account
    pair = bus.handle(Login(email=user.email, password=password))
    pay(bus, pending)
    active = SubscriptionSummary("monthly", "active", clock.now() + MONTH, pending.id)

    assert bus.handle(Authenticate(pair.access_token)).subscription == active

    container.caching.states().delete(user.id)
    assert bus.handle(Authenticate(pair.access_token)).subscription == active
    state = stored(container, user.id)
    assert state is not None and state.complete
    assert (state.subscription.version, state.subscription.value) == (2, active)


def test_a_login_after_activation_keeps_the_subscription_in_the_state(
    container, bus, clock, account, pending
):
    user, password = account
    pay(bus, pending)
    active = SubscriptionSummary("monthly", "active", clock.now() + MONTH, pending.id)
    clock.advance(minutes=1)

    pair = bus.handle(Login(email=user.email, password=password))

    assert summary_in_state(container, user.id) == (2, active)
    assert bus.handle(Authenticate(pair.access_token)).subscription == active


def test_a_payment_after_the_period_ran_out_starts_a_new_period_from_now(
    container, bus, clock, account, pending
):
    pay(bus, pending, "pay_first")
    clock.advance(days=31)  # over, but not yet swept: still "active" in the database
    now = clock.now()

    pay(bus, pending, "pay_late")

    renewed = read(bus, pending)
    assert (renewed.status, renewed.current_period_start, renewed.current_period_end) == (
        SubscriptionStatus.ACTIVE,
        now,
        now + MONTH,
    )
