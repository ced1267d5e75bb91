"""Event consumers of the subscriptions context, and the sweep that catches up on what they
and the clock left to do."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from domain.session_state.model import Group, SubscriptionSummary, UserState, Versioned, writes
from domain.subscriptions.commands import SweepSubscriptions
from domain.subscriptions.events import PaymentConfirmed, SubscriptionActivated, UserSubscriptionStatusChanged
from domain.subscriptions.model import SubscriptionStatus
from domain.subscriptions.status import status_changed

if TYPE_CHECKING:
    from domain.subscriptions.plans import Plans
    from ports.clock import Clock
    from ports.session_state import UserStateStore
    from ports.unit_of_work import UnitOfWork

log = logging.getLogger("user_service.subscriptions")


def activate_subscription(event: PaymentConfirmed, *, uow: UnitOfWork, plans: Plans, clock: Clock) -> None:
    """ActivateSubscription: apply a confirmed payment. A payment is applied once, however
    often its event is delivered (the applied mark is read under the user's lock)."""
    now = clock.now()
    with uow:
        subscriptions = uow.subscriptions.of_user(event.user_id, lock=True)
        payment = uow.subscriptions.get_payment(event.payment_id)
        if subscriptions is None or payment is None or payment.applied_at is not None:
            return  # the user was deleted, or the event was delivered before
        current = subscriptions.current
        pending = current is not None and current.status == SubscriptionStatus.PENDING
        plan = plans.get(current.plan) if current is not None else None
        if plan is None or not subscriptions.apply(payment, plan, now):
            log.warning(
                "operation=subscription.payment_unapplied payment=%s subscription=%s: "
                "the subscription ended or its plan was withdrawn; the payment needs a refund",
                payment.id,
                payment.subscription_id,
            )
            return
        uow.subscriptions.save(subscriptions)
        assert current is not None and current.current_period_end is not None
        uow.record(status_changed(subscriptions, now, event.locale))
        if pending:
            uow.record(
                SubscriptionActivated(
                    user_id=event.user_id,
                    subscription_id=current.id,
                    plan=current.plan,
                    current_period_end=current.current_period_end,
                    occurred_at=now,
                    locale=event.locale,
                )
            )
        uow.commit()


@writes(Group.SUBSCRIPTION)
def update_subscription_state(event: UserSubscriptionStatusChanged, *, states: UserStateStore) -> None:
    """Write the subscription group only, at the event's version: an older summary arriving
    late is refused by the store's compare-and-set."""
    summary = SubscriptionSummary(event.plan, event.status, event.current_period_end, event.subscription_id)
    states.write(UserState(event.user_id, subscription=Versioned(event.version, summary)))


@dataclass(frozen=True)
class SweepResult:
    expired: int
    payments_retried: int


def sweep_subscriptions(cmd: SweepSubscriptions, *, uow: UnitOfWork, clock: Clock) -> SweepResult:
    now = clock.now()
    # Payments first: a renewal paid in time but not yet applied must extend the period before
    # the period is found over. Their confirmations are delivered again (applying is
    # idempotent) by the publish rule like any event: recorded, committed (nothing to write),
    # published on leaving this block, so their consumer has run before the expiries below.
    with uow:
        due = uow.subscriptions.ended_periods(now, cmd.limit)
        unapplied = uow.subscriptions.unapplied_payments(cmd.limit)
        for payment, user_id in unapplied:
            uow.record(
                PaymentConfirmed(
                    user_id=user_id,
                    subscription_id=payment.subscription_id,
                    payment_id=payment.id,
                    occurred_at=now,
                    locale=cmd.locale,
                )
            )
        uow.commit()
    expired = 0
    for user_id in due:
        with uow:
            subscriptions = uow.subscriptions.of_user(user_id, lock=True)
            if subscriptions is None or not subscriptions.expire(now):
                continue  # renewed or cancelled meanwhile
            uow.subscriptions.save(subscriptions)
            uow.record(status_changed(subscriptions, now, cmd.locale))
            uow.commit()
        expired += 1
    return SweepResult(expired, len(unapplied))
