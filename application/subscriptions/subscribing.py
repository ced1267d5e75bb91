"""Registering, reading and cancelling subscriptions, and confirming payments.

RegisterSubscription records its event, commits and writes the subscription group of UserState
in its unit of work, which publishes the event on leaving the block (the port's rule). Every
later change reaches the state through UserSubscriptionStatusChanged and its one consumer
(`consumers.update_subscription_state`); a confirmed payment is applied by a consumer too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID, uuid4

from application.users.support import USER_NOT_FOUND
from domain.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from domain.messages import Message
from domain.session_state.model import UserState
from domain.subscriptions.commands import CancelSubscription, ConfirmPayment, RegisterSubscription
from domain.subscriptions.events import PaymentConfirmed, SubscriptionRegistered
from domain.subscriptions.model import SUBSCRIPTION_ENDED, Payment, Subscription, SubscriptionStatus
from domain.subscriptions.queries import CheckEntitlement, GetSubscription
from domain.subscriptions.status import status_changed

if TYPE_CHECKING:
    from domain.subscriptions.plans import Plans
    from ports.clock import Clock
    from ports.session_state import UserStateStore
    from ports.unit_of_work import UnitOfWork

SUBSCRIPTION_NOT_FOUND = Message("The subscription was not found.")
PLAN_UNKNOWN = Message("Must be one of: {choices}.")
PLAN_WITHDRAWN = Message("The subscription's plan is no longer offered.")
WRONG_AMOUNT = Message("The plan costs {amount} {currency}.")
PAYMENT_RECORDED = Message("This payment was already recorded.")


def register_subscription(
    cmd: RegisterSubscription,
    *,
    uow: UnitOfWork,
    plans: Plans,
    states: UserStateStore,
    clock: Clock,
) -> Subscription:
    plan = plans.get(cmd.plan)
    if plan is None:
        raise InvalidInput({"plan": [Message(PLAN_UNKNOWN.text, {"choices": ", ".join(plans.names())})]})
    now = clock.now()
    with uow:
        subscriptions = uow.subscriptions.of_user(cmd.user_id, lock=True)
        if subscriptions is None:
            raise NotFound(USER_NOT_FOUND)
        subscription = subscriptions.register(plan, now)
        uow.subscriptions.save(subscriptions)
        uow.record(
            SubscriptionRegistered(
                user_id=cmd.user_id,
                subscription_id=subscription.id,
                plan=plan.name,
                occurred_at=now,
                locale=cmd.locale,
            )
        )
        uow.commit()
        states.write(UserState(cmd.user_id, subscription=subscriptions.summary()))
    return subscription


def cancel_subscription(cmd: CancelSubscription, *, uow: UnitOfWork, clock: Clock) -> Subscription:
    """End the subscription at once. Cancelling it again changes nothing."""
    now = clock.now()
    with uow:
        try:
            found = _visible(uow, cmd.subscription_id, cmd.user_id)
        except NotFound:
            cmd.condition.check_missing()
            raise
        subscriptions = uow.subscriptions.of_user(found.user_id, lock=True)
        current = subscriptions.current if subscriptions is not None else None
        subscription = (
            current if current is not None and current.id == found.id else _visible(uow, found.id, None)
        )
        cmd.condition.check(subscription.version)
        if subscription.status == SubscriptionStatus.CANCELLED:
            if subscriptions is not None and subscription is current:
                # Its summary published again: this may be the retry of a cancel answered 503
                # whose session-state write has not landed, and its answer must hold everywhere.
                uow.record(status_changed(subscriptions, now, cmd.locale))
                uow.commit()
            return subscription
        assert subscriptions is not None
        subscriptions.cancel(subscription.id, now)
        uow.subscriptions.save(subscriptions)
        uow.record(status_changed(subscriptions, now, cmd.locale))
        uow.commit()
    return subscription


def confirm_payment(cmd: ConfirmPayment, *, uow: UnitOfWork, plans: Plans, clock: Clock) -> Payment:
    """Record the payment; its PaymentConfirmed event activates (or extends) the subscription.
    A payment is recorded once: its reference again is refused, whoever sends it."""
    now = clock.now()
    with uow:
        found = _visible(uow, cmd.subscription_id, None)
        # Under the user's lock, so a cancellation or an expiry cannot slip in between this
        # check and the commit and leave a payment that nothing will apply.
        subscriptions = uow.subscriptions.of_user(found.user_id, lock=True)
        subscription = subscriptions.current if subscriptions is not None else None
        if subscription is None or subscription.id != found.id or subscription.ended:
            raise Conflict(SUBSCRIPTION_ENDED)
        plan = plans.get(subscription.plan)
        if plan is None:
            raise Conflict(PLAN_WITHDRAWN)
        if (cmd.amount, cmd.currency.upper()) != (plan.price, plan.currency):
            price = {"amount": plan.price, "currency": plan.currency}
            raise InvalidInput({"amount": [Message(WRONG_AMOUNT.text, price)]})
        if uow.subscriptions.find_payment(cmd.reference) is not None:
            raise AlreadyExists(PAYMENT_RECORDED)
        payment = Payment(uuid4(), subscription.id, cmd.reference, cmd.amount, plan.currency, cmd.source, now)
        uow.subscriptions.add_payment(payment)
        uow.record(
            PaymentConfirmed(
                user_id=subscription.user_id,
                subscription_id=subscription.id,
                payment_id=payment.id,
                occurred_at=now,
                locale=cmd.locale,
            )
        )
        try:
            uow.commit()
        except AlreadyExists:  # the same reference, committed by a concurrent request
            raise AlreadyExists(PAYMENT_RECORDED) from None
    return payment


def get_subscription(query: GetSubscription, *, uow: UnitOfWork) -> Subscription:
    with uow:
        return _visible(uow, query.subscription_id, query.user_id)


def check_entitlement(query: CheckEntitlement, *, plans: Plans, clock: Clock) -> bool:
    return plans.entitles(query.subscription, query.feature, clock.now())


def _visible(uow: UnitOfWork, subscription_id: UUID, user_id: UUID | None) -> Subscription:
    """The subscription, if it exists and the reader may see it (another user's is "not
    found": its existence is not revealed)."""
    subscription = uow.subscriptions.get(subscription_id)
    if subscription is None or (user_id is not None and subscription.user_id != user_id):
        raise NotFound(SUBSCRIPTION_NOT_FOUND)
    return subscription
