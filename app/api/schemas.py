"""Request and response schemas. Types and shapes only: the domain owns the field rules."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from domain.users.queries import MAX_PAGE_SIZE


class UserSchema(ma.Schema):
    id = ma.fields.UUID(required=True)
    email = ma.fields.String(required=True)
    initials = ma.fields.String(required=True)
    confirmed = ma.fields.Boolean(required=True)
    roles = ma.fields.List(ma.fields.String(), required=True)


# Documentation of the domain's rules (domain.users.rules enforces them, with per-field errors).
EMAIL_DOC = {
    "format": "email",
    "maxLength": 255,
    "example": "ada@example.com",
    "description": "Trimmed and lower-cased; unique.",
}
INITIALS_DOC = {
    "minLength": 1,
    "maxLength": 255,
    "example": "AL",
    "description": "Must not start with a digit nor be only spaces.",
}
PASSWORD_DOC = {
    "minLength": 8,
    "maxLength": 64,
    "example": "Secret123",
    "description": "At least one digit and one uppercase letter.",
}


class UserCreateSchema(ma.Schema):
    email = ma.fields.String(required=True, metadata=EMAIL_DOC)
    initials = ma.fields.String(required=True, metadata=INITIALS_DOC)
    password = ma.fields.String(required=True, load_only=True, metadata=PASSWORD_DOC)


class UserUpdateSchema(ma.Schema):
    email = ma.fields.String(metadata=EMAIL_DOC)
    initials = ma.fields.String(metadata=INITIALS_DOC)
    password = ma.fields.String(load_only=True, metadata=PASSWORD_DOC)
    old_password = ma.fields.String(
        load_only=True,
        metadata={"description": "The current password; required to change email or password."},
    )


class UserListArgs(ma.Schema):
    email = ma.fields.String()
    confirmed = ma.fields.Boolean()
    page = ma.fields.Integer(load_default=1, validate=validate.Range(min=1, error="Must be at least 1."))
    page_size = ma.fields.Integer(
        load_default=20,
        validate=validate.Range(min=1, max=MAX_PAGE_SIZE, error="Must be between 1 and 100."),
    )


class UserPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(UserSchema), required=True)
    page = ma.fields.Integer(required=True)
    page_size = ma.fields.Integer(required=True)
    total = ma.fields.Integer(required=True)


class ConfirmSchema(ma.Schema):
    token = ma.fields.String(required=True)


class ResetRequestSchema(ma.Schema):
    email = ma.fields.String(required=True)


class ResetConfirmSchema(ma.Schema):
    token = ma.fields.String(required=True)
    password = ma.fields.String(required=True, load_only=True, metadata=PASSWORD_DOC)
