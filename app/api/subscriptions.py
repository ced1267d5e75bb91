"""/api/subscriptions: register, read and cancel a subscription; confirm its payments."""

from __future__ import annotations

import json
from uuid import UUID

from flask import Response, jsonify
from flask.views import MethodView
from flask_smorest import Blueprint

from app.api import bus
from app.api.docs import BEARER, IF_MATCH, LOCATION, VALIDATORS, errors, not_modified
from app.api.schemas import (
    PaymentAcceptedSchema,
    PaymentSchema,
    SubscriptionCreateSchema,
    SubscriptionSchema,
)
from app.http.auth import current_principal, own
from app.http.conditional import etag_of, represent, write_condition
from app.http.exposure import location
from app.http.locale import current_locale
from app.http.payments import HEADERS, payment_caller, payment_source
from domain.errors import InvalidInput
from domain.messages import Message
from domain.subscriptions.commands import CancelSubscription, ConfirmPayment, RegisterSubscription
from domain.subscriptions.model import Subscription
from domain.subscriptions.queries import GetSubscription

blp = Blueprint("subscriptions", __name__, url_prefix="/api/subscriptions", description="Subscriptions")

# Its status changes when a payment arrives from someone else: revalidate every time.
CACHE_CONTROL = "private, no-cache"
OTHER_SUBSCRIPTION = Message("Must be the subscription of the URL.")
CALLBACK_HEADERS = [
    {
        "in": "header",
        "name": name,
        "required": False,
        "schema": {"type": "string"},
        "description": "A payment provider's signed callback (Standard Webhooks); an admin sends none",
    }
    for name in HEADERS
]
PAYMENT_LOCATION = {"Location": {"schema": {"type": "string"}, "description": "URL of the subscription"}}
ADMIN_OR_PROVIDER: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"paymentSignature": []}]


def subscription_response(subscription: Subscription, status: int = 200, **headers: str) -> Response:
    body = json.dumps(SubscriptionSchema().dump(subscription))
    return represent(body, etag_of(subscription.id, subscription.version), CACHE_CONTROL, status, **headers)


@blp.route("")
class Subscriptions(MethodView):
    @blp.arguments(SubscriptionCreateSchema)
    @blp.response(201, SubscriptionSchema, headers={**VALIDATORS, **LOCATION})
    @blp.doc(security=BEARER)
    @errors(blp, 400, 401, 404, 409, 413, 415)
    def post(self, body: dict) -> Response:
        """Subscribe the signed-in user to a plan; it is pending until its payment is confirmed"""
        principal = current_principal()
        command = RegisterSubscription(user_id=principal.user_id, plan=body["plan"], locale=current_locale())
        subscription = bus().handle(command)
        where = location("subscriptions.SubscriptionById", subscription_id=subscription.id)
        return subscription_response(subscription, 201, Location=where)


@blp.route("/<uuid:subscription_id>")
class SubscriptionById(MethodView):
    @blp.response(200, SubscriptionSchema, headers=VALIDATORS)
    @blp.doc(security=BEARER)
    @not_modified(blp)
    @errors(blp, 401, 404)
    def get(self, subscription_id: UUID) -> Response:
        """Read a subscription (its user or an admin)"""
        return subscription_response(bus().handle(GetSubscription(subscription_id, own())))


@blp.route("/<uuid:subscription_id>/cancel")
class Cancellation(MethodView):
    @blp.response(200, SubscriptionSchema, headers=VALIDATORS)
    @blp.doc(parameters=[IF_MATCH], security=BEARER)
    @errors(blp, 401, 404, 409, 412)
    def post(self, subscription_id: UUID) -> Response:
        """Cancel a subscription at once (its user or an admin); cancelling again changes nothing"""
        command = CancelSubscription(
            subscription_id=subscription_id,
            user_id=own(),
            condition=write_condition(subscription_id),
            locale=current_locale(),
        )
        return subscription_response(bus().handle(command))


@blp.route("/<uuid:subscription_id>/payments")
class Payments(MethodView):
    @payment_caller
    @blp.arguments(PaymentSchema)
    @blp.response(202, PaymentAcceptedSchema, headers=PAYMENT_LOCATION)
    @blp.doc(security=ADMIN_OR_PROVIDER, parameters=CALLBACK_HEADERS)
    @errors(blp, 400, 401, 403, 404, 409, 413, 415)
    def post(self, body: dict, subscription_id: UUID) -> Response:
        """Confirm a payment (admins, or the payment provider's signed callback); it activates a
        pending subscription, or extends an active one by a period"""
        if body["subscription_id"] != subscription_id:
            raise InvalidInput({"subscription_id": [OTHER_SUBSCRIPTION]})
        command = ConfirmPayment(
            subscription_id=subscription_id,
            reference=body["reference"],
            amount=body["amount"],
            currency=body["currency"],
            source=payment_source(),
            locale=current_locale(),
        )
        payment = bus().handle(command)
        response = jsonify(PaymentAcceptedSchema().dump(vars(payment)))
        response.status_code = 202
        response.headers["Location"] = location(
            "subscriptions.SubscriptionById", subscription_id=subscription_id
        )
        response.headers["Cache-Control"] = "no-store"
        return response
