# Over 200 lines: every request and response schema of the API, declarations only.
"""Request and response schemas. Types and shapes only: the domain owns the field rules."""

from __future__ import annotations

from collections.abc import Iterable

import marshmallow as ma
from apispec import APISpec
from marshmallow import validate

from adapters.i18n import N_
from domain.users import rules
from domain.users.queries import MAX_PAGE_SIZE

MAX_PAGE = 100_000  # keeps the offset far from any integer limit of the database


class Text(ma.fields.String):
    """A string without control characters or lone surrogates, in every field and argument:
    PostgreSQL refuses NUL, and a surrogate cannot be encoded, so they must never get further."""

    default_error_messages = {"control": N_("Must not contain control characters.")}

    def __init__(self, *args, metadata: dict | None = None, **kwargs) -> None:
        super().__init__(*args, metadata={"pattern": rules.TEXT_PATTERN, **(metadata or {})}, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if rules.has_control_characters(text):
            raise self.make_error("control")
        return text


class UserSchema(ma.Schema):
    id = ma.fields.UUID(required=True)
    email = Text(required=True)
    initials = Text(required=True)
    confirmed = ma.fields.Boolean(required=True)
    roles = ma.fields.List(Text(), required=True)


# The domain's rules, stated for clients (domain.users.rules enforces them, with per-field
# errors; its patterns accept exactly what it does).
EMAIL_DOC = {
    "maxLength": rules.EMAIL_MAX,
    "pattern": rules.EMAIL_PATTERN,
    "example": "ada@example.com",
    "description": "One @, no white space inside, a dot in the domain; at most 255 characters as "
    "sent; trimmed and lower-cased; unique.",
}
INITIALS_DOC = {
    "minLength": 1,
    "maxLength": rules.INITIALS_MAX,
    "pattern": rules.INITIALS_PATTERN,
    "example": "AL",
    "description": "Must not start with a digit (0-9) nor be only white space.",
}
PASSWORD_DOC = {
    "minLength": rules.PASSWORD_MIN,
    "maxLength": rules.PASSWORD_MAX,
    "pattern": rules.PASSWORD_PATTERN,
    "example": "Secret123",
    "description": "At least one digit (0-9) and one uppercase letter (A-Z).",
}
# What the service issues (adapters.security.SecretsTokenGenerator): 32 random bytes, base64url.
TOKEN_DOC = {"pattern": "^[A-Za-z0-9_-]{43}$", "description": "The token from the mail"}


class UserCreateSchema(ma.Schema):
    email = Text(required=True, metadata=EMAIL_DOC)
    initials = Text(required=True, metadata=INITIALS_DOC)
    password = Text(required=True, load_only=True, metadata=PASSWORD_DOC)


class UserUpdateSchema(ma.Schema):
    email = Text(metadata=EMAIL_DOC)
    initials = Text(metadata=INITIALS_DOC)
    password = Text(load_only=True, metadata=PASSWORD_DOC)
    old_password = Text(
        load_only=True,
        metadata={"description": "The current password; required with any email or password."},
    )


class PageArgs(ma.Schema):
    page = ma.fields.Integer(
        load_default=1, validate=validate.Range(min=1, max=MAX_PAGE, error="Must be between 1 and 100000.")
    )
    page_size = ma.fields.Integer(
        load_default=20,
        validate=validate.Range(min=1, max=MAX_PAGE_SIZE, error="Must be between 1 and 100."),
    )


class UserListArgs(PageArgs):
    email = Text()
    confirmed = ma.fields.Boolean()


class UserPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(UserSchema), required=True)
    page = ma.fields.Integer(required=True)
    page_size = ma.fields.Integer(required=True)
    total = ma.fields.Integer(required=True)


class ConfirmSchema(ma.Schema):
    token = Text(required=True, metadata=TOKEN_DOC)


class ResetRequestSchema(ma.Schema):
    email = Text(required=True)


class ResetConfirmSchema(ma.Schema):
    token = Text(required=True, metadata=TOKEN_DOC)
    password = Text(required=True, load_only=True, metadata=PASSWORD_DOC)


class LoginSchema(ma.Schema):
    email = Text(required=True, metadata={"example": "ada@example.com"})
    password = Text(required=True, load_only=True, metadata={"example": "Secret123"})
    device_token = Text(
        load_only=True,
        validate=ma.validate.Length(max=128),
        metadata={"description": "The device_token of an earlier login of this account from this device"},
    )


class RefreshSchema(ma.Schema):
    refresh_token = Text(
        required=True,
        load_only=True,
        metadata={**TOKEN_DOC, "description": "The refresh_token of the last login or refresh"},
    )


class TokenSchema(ma.Schema):
    """RFC 6749 §5.1's token response."""

    access_token = ma.fields.String(required=True, metadata={"description": "JWT, sent as Bearer"})
    token_type = ma.fields.String(required=True, metadata={"example": "Bearer"})
    expires_in = ma.fields.Integer(required=True, metadata={"description": "Seconds"})
    refresh_token = ma.fields.String(
        required=True, metadata={"description": "Single use: each refresh returns a new one"}
    )
    user_id = ma.fields.UUID(required=True)
    session_id = ma.fields.UUID(required=True)
    device_token = ma.fields.String(
        metadata={
            "description": "After a login: send it with this account's next logins from this device, "
            "whose failed attempts then count against the device alone"
        }
    )


SUBSCRIPTION_STATUS = {"enum": ["pending", "active", "expired", "cancelled"]}


class SubscriptionSummarySchema(ma.Schema):
    id = ma.fields.UUID(attribute="subscription_id", allow_none=True)
    plan = ma.fields.String(required=True)
    status = ma.fields.String(required=True, metadata=SUBSCRIPTION_STATUS)
    current_period_end = ma.fields.AwareDateTime(allow_none=True)


class MeSchema(ma.Schema):
    id = ma.fields.UUID(required=True)
    email = ma.fields.String(required=True)
    roles = ma.fields.List(ma.fields.String(), required=True)
    session_id = ma.fields.UUID(required=True)
    last_login_at = ma.fields.AwareDateTime(allow_none=True)
    subscription = ma.fields.Nested(SubscriptionSummarySchema, allow_none=True)


class SubscriptionCreateSchema(ma.Schema):
    plan = Text(required=True, metadata={"example": "monthly", "description": "A configured plan"})


class SubscriptionSchema(ma.Schema):
    id = ma.fields.UUID(required=True)
    user_id = ma.fields.UUID(required=True)
    plan = ma.fields.String(required=True)
    status = ma.fields.String(required=True, metadata=SUBSCRIPTION_STATUS)
    created_at = ma.fields.AwareDateTime(required=True)
    current_period_start = ma.fields.AwareDateTime(allow_none=True)
    current_period_end = ma.fields.AwareDateTime(allow_none=True)
    activated_at = ma.fields.AwareDateTime(allow_none=True)
    cancelled_at = ma.fields.AwareDateTime(allow_none=True)


class PaymentSchema(ma.Schema):
    subscription_id = ma.fields.UUID(required=True, metadata={"description": "The subscription of the URL"})
    reference = Text(
        required=True,
        validate=validate.Length(min=1, max=255),
        metadata={"description": "The payment's id at the payment provider; recorded once"},
    )
    amount = ma.fields.Integer(
        required=True,
        strict=True,
        metadata={"description": "The plan's price, in the currency's minor unit", "example": 900},
    )
    currency = Text(
        required=True,
        validate=validate.Length(equal=3),
        metadata={"description": "The plan's currency", "example": "EUR"},
    )


class PaymentAcceptedSchema(ma.Schema):
    payment_id = ma.fields.UUID(required=True, attribute="id")
    subscription_id = ma.fields.UUID(required=True)


class PremiumSchema(ma.Schema):
    feature = ma.fields.String(required=True)
    plan = ma.fields.String(required=True)
    until = ma.fields.AwareDateTime(required=True)


class RolesSchema(ma.Schema):
    roles = ma.fields.List(
        Text(metadata={"enum": sorted(rules.KNOWN_ROLES)}),
        required=True,
        metadata={"minItems": 1, "example": ["user", "admin"]},
    )


class StatusSchema(ma.Schema):
    status = Text(required=True, metadata={"enum": ["active", "disabled"]})


class ActivitySchema(ma.Schema):
    occurred_at = ma.fields.AwareDateTime(required=True)
    kind = ma.fields.String(
        required=True, metadata={"enum": ["login", "refresh", "logout", "refresh_reused"]}
    )
    client_address = ma.fields.String(allow_none=True)
    user_agent = ma.fields.String(allow_none=True)


class ActivityPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(ActivitySchema), required=True)
    page = ma.fields.Integer(required=True)
    page_size = ma.fields.Integer(required=True)
    total = ma.fields.Integer(required=True)


def complete(spec: APISpec, plans: Iterable[str]) -> None:
    """Say in the registered schemas what marshmallow cannot: the configured plans (settings,
    not code), and that a new email or password comes with the current password."""
    schemas = spec.components.schemas
    schemas["SubscriptionCreate"]["properties"]["plan"]["enum"] = sorted(plans)
    schemas["UserUpdate"]["anyOf"] = [
        {"required": ["old_password"]},
        {"properties": {"email": {"not": {}}, "password": {"not": {}}}},
    ]
