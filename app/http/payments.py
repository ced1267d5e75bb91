"""Who may confirm a payment: an admin, or the payment provider's callback, signed the
Standard Webhooks way (HMAC-SHA256 over the callback id, its timestamp and the raw body, with a
5 minute tolerance on the timestamp), verified by the `standardwebhooks` library.

A replayed callback carries the same body, and so the same payment reference, which the
service records once: the replay is refused when its command runs (409), changing nothing.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any

from flask import current_app, g, request
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from app.http.auth import bearer_token, require_admin
from domain.errors import Unauthenticated
from domain.messages import Message

if TYPE_CHECKING:
    from werkzeug.datastructures import Headers

HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
MAX_ID = 200  # the payment's `source` keeps it (255 characters with its prefix)
# What the OpenAPI document calls a signed callback (the signature header stands for all three).
SECURITY_SCHEME = {
    "type": "apiKey",
    "in": "header",
    "name": "webhook-signature",
    "description": "Standard Webhooks: with webhook-id and webhook-timestamp, `v1,` + base64 "
    "HMAC-SHA256 of `id.timestamp.body` under PAYMENT_WEBHOOK_SECRET; 5 minutes' tolerance.",
}
NO_CREDENTIALS = Message("An admin's access token or a signed payment callback is required.")
LONG_ID = Message("The payment callback's webhook-id is longer than 200 characters.")
CALLBACKS_DISABLED = Message("Signed payment callbacks are not enabled on this service.")
BAD_SIGNATURE = Message("The payment callback's signature is missing, malformed or does not match its body.")
STALE = Message("The payment callback's timestamp is more than 5 minutes away from the server's clock.")


class PaymentCallbacks:
    def __init__(self, secret: str | None) -> None:
        self._webhook = Webhook(secret) if secret else None

    def verify(self, body: bytes, headers: Headers) -> str:
        """The callback's id when its signature and timestamp hold; raises Unauthenticated."""
        if self._webhook is None:
            raise Unauthenticated(CALLBACKS_DISABLED)
        wanted = {name: headers.get(name, "") for name in HEADERS}
        if len(wanted["webhook-id"]) > MAX_ID:
            raise Unauthenticated(LONG_ID)
        try:
            self._webhook.verify(body, wanted, json_parse=False)
        except WebhookVerificationError as error:
            raise Unauthenticated(STALE if "timestamp too" in str(error) else BAD_SIGNATURE) from None
        except (ValueError, binascii.Error, UnicodeDecodeError):  # a signature without "v1,", bad base64
            raise Unauthenticated(BAD_SIGNATURE) from None
        return wanted["webhook-id"]


def payment_source() -> str:
    """Who confirms this request's payment: "provider:<callback id>" or "admin:<user id>"."""
    return g.payment_source


def payment_caller(view: Callable) -> Callable:
    """Authenticate the caller before anything else reads the body: a request that carries a
    callback header must be a correctly signed callback; any other must come from an admin."""

    @wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        if any(name in request.headers for name in HEADERS):
            callbacks: PaymentCallbacks = current_app.extensions["container"].payment_callbacks()
            g.payment_source = f"provider:{callbacks.verify(request.get_data(cache=True), request.headers)}"
        elif bearer_token(request.environ) is None:
            raise Unauthenticated(NO_CREDENTIALS)
        else:
            g.payment_source = f"admin:{require_admin().user_id}"
        return view(*args, **kwargs)

    return checked
