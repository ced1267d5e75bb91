"""The field rules' regular expressions (published in the API's schema) accept exactly what the
rules' checks accept, in Python's engine and in the Rust one schemathesis and many validators
use (ECMA-like): a client that checks against the schema is never told otherwise."""

from __future__ import annotations

import re

import jsonschema_rs
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from domain.errors import InvalidInput
from domain.users import rules

# Text weighted towards what the rules look at: ASCII digits and capitals, other scripts' digits
# and capitals, white space of several kinds, the separators of an email, control characters.
# No lone surrogates: the patterns cannot name them (the last test covers them).
_INTERESTING = "0123456789AZaz@. \u00a0\u3000\u2003\ufeff\t\n\x00\x85\x9f٣²ÉЖǅİß"
texts = st.text(st.sampled_from(_INTERESTING) | st.characters(exclude_categories=["Cs"]), max_size=20)


def matches(pattern: str, text: str) -> bool:
    """The pattern in Python's engine and in jsonschema-rs's, which must agree."""
    python = re.fullmatch(pattern, text) is not None
    assert jsonschema_rs.validator_for({"pattern": pattern}).is_valid(text) == python, (pattern, text)
    return python


def accepted(**field: str) -> bool:
    try:
        rules.check(**field)
    except InvalidInput:
        return False
    return True


@settings(max_examples=1000)
@given(texts)
@example("Secret123")
@example("SECRET١٢٣45")
@example("secret123")
def test_password_pattern_is_the_password_rule(text):
    if rules.PASSWORD_MIN <= len(text) <= rules.PASSWORD_MAX:
        assert matches(rules.PASSWORD_PATTERN, text) == accepted(password=text)


@settings(max_examples=1000)
@given(texts)
@example(" 1")
@example("1A")
@example("\u00a0")
@example("\u00a0\u00a0x")
@example("\t")
@example("\ufeff")
def test_initials_pattern_is_the_initials_rule(text):
    if 1 <= len(text) <= rules.INITIALS_MAX:
        assert matches(rules.INITIALS_PATTERN, text) == accepted(initials=text)


@settings(max_examples=1000)
@given(texts)
@example(" Ada@Example.com ")
@example("a@b.c.")
@example("a@b")
@example("a@@b.c")
@example("\u3000a@b.co")
@example("a\ufeff@b.co")
@example("a@b.co\n")
@example("\x85a@b.co")
def test_email_pattern_is_the_email_rule(text):
    if len(text) <= rules.EMAIL_MAX:
        assert matches(rules.EMAIL_PATTERN, text) == accepted(email=text)


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("SECRET١٢٣٤x", rules.PASSWORD_DIGIT),
        ("secret²123", rules.PASSWORD_UPPER),
        ("ÉÇÖ123xyz", rules.PASSWORD_UPPER),
    ],
)
def test_digits_and_capitals_are_ascii(password, problem):
    with pytest.raises(InvalidInput) as raised:
        rules.check(password=password)
    assert problem in raised.value.errors["password"]


@pytest.mark.parametrize("field", ["email", "initials", "password"])
def test_a_lone_surrogate_is_refused_in_every_field(field):
    with pytest.raises(InvalidInput) as raised:
        rules.check(**{field: "Ab1@b.co\ud800xyz"})
    assert rules.CONTROL_CHARACTERS in raised.value.errors[field]
