"""The message maps of the subscriptions context."""

from __future__ import annotations

from application.messagebus import Handler
from application.subscriptions.consumers import (
    activate_subscription,
    sweep_subscriptions,
    update_subscription_state,
)
from application.subscriptions.subscribing import (
    cancel_subscription,
    check_entitlement,
    confirm_payment,
    get_subscription,
    register_subscription,
)
from domain.subscriptions.commands import (
    CancelSubscription,
    ConfirmPayment,
    RegisterSubscription,
    SweepSubscriptions,
)
from domain.subscriptions.events import PaymentConfirmed, UserSubscriptionStatusChanged
from domain.subscriptions.queries import CheckEntitlement, GetSubscription

COMMAND_HANDLERS: dict[type, Handler] = {
    RegisterSubscription: register_subscription,
    CancelSubscription: cancel_subscription,
    ConfirmPayment: confirm_payment,
    SweepSubscriptions: sweep_subscriptions,
}
QUERY_HANDLERS: dict[type, Handler] = {GetSubscription: get_subscription, CheckEntitlement: check_entitlement}
EVENT_HANDLERS: dict[type, list[Handler]] = {
    PaymentConfirmed: [activate_subscription],
    UserSubscriptionStatusChanged: [update_subscription_state],
}
