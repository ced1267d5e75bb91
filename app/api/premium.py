"""/api/premium: a sample resource for subscribers, whose entitlement comes from the session
state alone (the authentication already read it: no other read, no database)."""

from __future__ import annotations

from flask import Response, jsonify
from flask.views import MethodView
from flask_smorest import Blueprint

from app.api import bus
from app.api.docs import BEARER, errors
from app.api.schemas import PremiumSchema
from app.http.auth import current_principal
from domain.errors import PermissionDenied
from domain.messages import Message
from domain.subscriptions.queries import CheckEntitlement

blp = Blueprint("premium", __name__, url_prefix="/api/premium", description="Subscribers only")

FEATURE = "premium"
NOT_ENTITLED = Message("An active subscription whose plan includes {feature} is required.")


@blp.route("")
class Premium(MethodView):
    @blp.response(200, PremiumSchema)
    @blp.doc(security=BEARER)
    @errors(blp, 401, 403)
    def get(self) -> Response:
        """Premium content: 200 while the user's subscription grants the premium feature, else 403"""
        subscription = current_principal().subscription
        if not bus().handle(CheckEntitlement(subscription, FEATURE)):
            raise PermissionDenied(Message(NOT_ENTITLED.text, {"feature": FEATURE}))
        assert subscription is not None
        until = subscription.current_period_end
        response = jsonify(
            PremiumSchema().dump({"feature": FEATURE, "plan": subscription.plan, "until": until})
        )
        response.headers["Cache-Control"] = "private, no-store"
        response.headers["Vary"] = "Authorization"
        return response
