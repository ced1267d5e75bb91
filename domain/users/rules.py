"""Field rules of a user (DESIGN §3). Each check returns the normalised value or raises."""

from __future__ import annotations

import re
from typing import overload

from domain.errors import InvalidInput
from domain.messages import Message

EMAIL_MAX = 255
INITIALS_MAX = 255
PASSWORD_MIN, PASSWORD_MAX = 8, 64
# Structural check only: one @, no spaces, a dot in the domain. Deliverability is proven by the
# confirmation mail, not by a pattern.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
# C0 and C1 controls and lone surrogates: never meaningful here, and NUL is refused by
# PostgreSQL while a surrogate cannot even be encoded.
_CONTROLS = r"\x00-\x1f\x7f-\x9f"
_CONTROL = re.compile(rf"[{_CONTROLS}\ud800-\udfff]")

# The rules as regular expressions, for the API's schema (JSON Schema `pattern`) and for clients
# that check before they send. They accept exactly what the checks below accept (a property
# test holds them to it), lengths aside (minLength / maxLength say those). "Digit" and
# "uppercase letter" are ASCII's 0-9 and A-Z: a rule a person can read and a client in any
# language can apply the same way (str.isdigit would also count "²" and "٣"). Lone surrogates,
# which a JSON \u escape can carry but no other pattern language can name (nor UTF-8 encode),
# are refused as well.
# White space as str.isspace() and str.strip() see it, less the control characters refused
# anyway, spelled out: `\s` differs between languages (JavaScript's and Rust's include U+FEFF).
_SPACES = r" \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_TEXT = f"[^{_CONTROLS}]"
_SPACE = f"[{_SPACES}]"
_VISIBLE = f"[^{_SPACES}{_CONTROLS}]"  # neither white space nor a control character
TEXT_PATTERN = f"^{_TEXT}*$"
PASSWORD_PATTERN = f"^{_TEXT}*(?:[0-9]{_TEXT}*[A-Z]|[A-Z]{_TEXT}*[0-9]){_TEXT}*$"
INITIALS_PATTERN = f"^(?:[^0-9{_SPACES}{_CONTROLS}]|{_SPACE}+{_VISIBLE}){_TEXT}*$"
# As sent: white space around it is trimmed.
_EMAIL_PART = f"[^@{_SPACES}{_CONTROLS}]"
EMAIL_PATTERN = f"^{_SPACE}*{_EMAIL_PART}+@{_EMAIL_PART}+\\.[^@.{_SPACES}{_CONTROLS}]+{_SPACE}*$"

_DIGITS = frozenset("0123456789")
_UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")

EMAIL_INVALID = Message("Not a valid email address.")
EMAIL_TOO_LONG = Message("Must be at most {max} characters.", {"max": EMAIL_MAX})
INITIALS_LENGTH = Message("Must be between 1 and {max} characters.", {"max": INITIALS_MAX})
INITIALS_DIGIT = Message("Must not start with a digit (0-9).")
INITIALS_BLANK = Message("Must not consist of spaces only.")
PASSWORD_LENGTH = Message(
    "Must be between {min} and {max} characters.", {"min": PASSWORD_MIN, "max": PASSWORD_MAX}
)
PASSWORD_DIGIT = Message("Must contain at least one digit (0-9).")
PASSWORD_UPPER = Message("Must contain at least one uppercase letter (A-Z).")
CONTROL_CHARACTERS = Message("Must not contain control characters.")


def email_problems(raw: str) -> tuple[str, list[Message]]:
    email = normalise_email(raw)
    if has_control_characters(raw):  # before trimming, which would drop a trailing newline
        return email, [CONTROL_CHARACTERS]
    if len(email) > EMAIL_MAX or len(raw) > EMAIL_MAX:  # the raw bound is the one a schema states
        return email, [EMAIL_TOO_LONG]
    return email, ([] if _EMAIL.match(email) else [EMAIL_INVALID])


def initials_problems(raw: str) -> list[Message]:
    if not 1 <= len(raw) <= INITIALS_MAX:
        return [INITIALS_LENGTH]
    if has_control_characters(raw):
        return [CONTROL_CHARACTERS]
    if raw.isspace():
        return [INITIALS_BLANK]
    return [INITIALS_DIGIT] if raw[0] in _DIGITS else []


def password_problems(raw: str) -> list[Message]:
    problems = [CONTROL_CHARACTERS] if has_control_characters(raw) else []
    if not PASSWORD_MIN <= len(raw) <= PASSWORD_MAX:
        problems.append(PASSWORD_LENGTH)
    if _DIGITS.isdisjoint(raw):
        problems.append(PASSWORD_DIGIT)
    if _UPPER.isdisjoint(raw):
        problems.append(PASSWORD_UPPER)
    return problems


@overload
def check(*, email: str, initials: str | None = None, password: str | None = None) -> str: ...


@overload
def check(*, email: None = None, initials: str | None = None, password: str | None = None) -> None: ...


def check(
    *, email: str | None = None, initials: str | None = None, password: str | None = None
) -> str | None:
    """Validate the given fields together; return the normalised email (if given).

    Raises InvalidInput listing every broken rule per field, so a client fixes all at once.
    """
    errors: dict[str, list[Message]] = {}
    normalised = None
    if email is not None:
        normalised, problems = email_problems(email)
        if problems:
            errors["email"] = problems
    if initials is not None and (problems := initials_problems(initials)):
        errors["initials"] = problems
    if password is not None and (problems := password_problems(password)):
        errors["password"] = problems
    if errors:
        raise InvalidInput(errors)
    return normalised


def has_control_characters(text: str) -> bool:
    return _CONTROL.search(text) is not None


def normalise_email(raw: str) -> str:
    return raw.strip().lower()


KNOWN_ROLES = frozenset({"user", "admin"})
ROLES_EMPTY = Message("At least one role is required.")
ROLE_UNKNOWN = Message("Unknown role {role}; the roles are: {known}.")


def check_roles(roles: frozenset[str]) -> frozenset[str]:
    problems = [
        Message(ROLE_UNKNOWN.text, {"role": role, "known": ", ".join(sorted(KNOWN_ROLES))})
        for role in sorted(roles - KNOWN_ROLES)
    ]
    if not roles:
        problems.append(ROLES_EMPTY)
    if problems:
        raise InvalidInput({"roles": problems})
    return frozenset(roles)
