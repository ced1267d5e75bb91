"""One contract for AccessTokens (ports/access_tokens.py), run against JwtAccessTokens as the
issuing worker and as another one: a token decodes to the claims it was issued with until it
expires, and anything else (another key or issuer, a tampered, malformed or garbage token,
another algorithm, `none` included) decodes to None and never raises."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from faker import Faker

from adapters.jwt_tokens import JwtAccessTokens
from tests.contracts.access_tokens.conftest import Backend

MICROSECOND = timedelta(microseconds=1)


@pytest.fixture
def now(faker: Faker) -> datetime:
    return faker.date_time_between("-1y", "+1y", tzinfo=UTC)


@pytest.fixture
def issued(backend: Backend, faker: Faker, now: datetime):
    return backend.issuer.issue(faker.uuid4(cast_to=None), faker.uuid4(cast_to=None), now)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], payload: dict[str, Any], secret: str, digest=hashlib.sha256) -> str:
    """A JWT put together by hand: any header, any payload, an HMAC signature with `digest`."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = hmac.new(secret.encode(), signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64(signature)}"


def payload_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def flip(text: str, index: int) -> str:
    """`text` with the base64url character at `index` replaced by another one."""
    replacement = "A" if text[index] != "A" else "B"
    return text[:index] + replacement + text[index + 1 :]


# --- genuine tokens -------------------------------------------------------------------------


def test_a_token_decodes_to_the_claims_it_was_issued_with(backend: Backend, faker: Faker, now: datetime):
    user_id, session_id = faker.uuid4(cast_to=None), faker.uuid4(cast_to=None)

    token, claims = backend.issuer.issue(user_id, session_id, now)

    assert isinstance(token, str) and token
    assert (claims.user_id, claims.session_id) == (user_id, session_id)
    assert isinstance(claims.token_id, str) and claims.token_id
    assert claims.issued_at == now.replace(microsecond=0)  # JWT times are whole seconds
    assert claims.expires_at == claims.issued_at + backend.lifetime
    decoded = backend.decoder.decode(token, now)
    assert decoded == claims
    assert decoded.issued_at.utcoffset() == decoded.expires_at.utcoffset() == timedelta(0)


def test_every_token_has_its_own_id(backend: Backend, faker: Faker, now: datetime):
    user_id, session_id = faker.uuid4(cast_to=None), faker.uuid4(cast_to=None)
    issued = [backend.issuer.issue(user_id, session_id, now) for _ in range(50)]

    assert len({token for token, _ in issued}) == len({claims.token_id for _, claims in issued}) == 50
    for token, claims in issued:
        assert backend.decoder.decode(token, now) == claims


def test_a_token_is_genuine_until_its_expiry_and_none_from_then_on(backend: Backend, issued, now: datetime):
    token, claims = issued
    assert backend.decoder.decode(token, now) == claims  # remembered from here on, if at all

    assert backend.decoder.decode(token, claims.expires_at - MICROSECOND) == claims
    assert backend.decoder.decode(token, claims.expires_at) is None
    assert backend.decoder.decode(token, claims.expires_at + timedelta(days=400)) is None
    assert backend.decoder.decode(token, now) == claims  # decode depends on `now` alone


def test_a_token_decoded_for_the_first_time_after_its_expiry_is_none(backend: Backend, issued):
    token, claims = issued
    assert backend.decoder.decode(token, claims.expires_at + timedelta(seconds=1)) is None


@pytest.mark.parametrize("seconds", [1, 60, 24 * 3600])
def test_the_lifetime_is_the_instances(backend: Backend, faker: Faker, now: datetime, seconds: int):
    tokens = backend.make(lifetime=timedelta(seconds=seconds))
    token, claims = tokens.issue(faker.uuid4(cast_to=None), faker.uuid4(cast_to=None), now)

    assert claims.expires_at - claims.issued_at == timedelta(seconds=seconds)
    assert tokens.decode(token, claims.expires_at - MICROSECOND) == claims
    assert tokens.decode(token, claims.expires_at) is None


@pytest.mark.parametrize("seconds", [90.5, 0.5])
def test_a_fractional_lifetime_is_rounded_up_to_whole_seconds(
    backend: Backend, faker: Faker, now: datetime, seconds: float
):
    tokens = backend.make(lifetime=timedelta(seconds=seconds))
    token, claims = tokens.issue(faker.uuid4(cast_to=None), faker.uuid4(cast_to=None), now)

    assert tokens.decode(token, claims.issued_at) == claims
    assert claims.expires_at - claims.issued_at == timedelta(seconds=math.ceil(seconds))


# --- not genuine: None, never an exception --------------------------------------------------


def test_a_token_signed_with_another_key_is_none(backend: Backend, issued, now: datetime):
    token, claims = issued
    other = backend.make(secret=secrets.token_urlsafe(32))
    theirs, _ = other.issue(claims.user_id, claims.session_id, now)

    assert backend.decoder.decode(theirs, now) is None
    assert other.decode(token, now) is None
    same_claims = forge({"alg": "HS256", "typ": "JWT"}, payload_of(token), secrets.token_urlsafe(32))
    assert backend.decoder.decode(same_claims, now) is None


def test_a_token_of_another_issuer_is_none(backend: Backend, issued, now: datetime):
    _, claims = issued
    elsewhere = backend.make(issuer="another-service")  # the same key
    theirs, _ = elsewhere.issue(claims.user_id, claims.session_id, now)

    assert backend.decoder.decode(theirs, now) is None


@pytest.mark.parametrize("part", ["header", "payload", "signature"])
def test_a_token_with_any_character_changed_is_none(backend: Backend, issued, now: datetime, part: str):
    token, _ = issued
    start = {"header": 0, "payload": token.index(".") + 1, "signature": token.rindex(".") + 1}[part]
    end = {"header": token.index("."), "payload": token.rindex("."), "signature": len(token)}[part]
    # The last character of a part may carry padding bits only: change every other one.
    for index in range(start, end - 1):
        assert backend.decoder.decode(flip(token, index), now) is None, (part, index)


def test_a_payload_changed_to_another_user_under_the_same_signature_is_none(
    backend: Backend, issued, faker: Faker, now: datetime
):
    token, _ = issued
    header, _, signature = token.split(".")
    payload = {**payload_of(token), "sub": str(faker.uuid4())}
    forged = f"{header}.{b64(json.dumps(payload).encode())}.{signature}"

    assert backend.decoder.decode(forged, now) is None


GARBAGE = [
    "",
    " ",
    "x",
    "a.b",
    "a.b.c",
    "..",
    "a.b.c.d",
    "Bearer x.y.z",
    "\x00.\x00.\x00",
    "\ud800.\udfff.x",  # lone surrogates: cannot even be encoded
    "é.ü.ß",
    "eyJhbGciOiJIUzI1NiJ9..",
    "e30.e30.",
    "W10.W10.W10",  # [] header and payload
    "bnVsbA.bnVsbA.bnVsbA",  # null
    "x" * 100_000,
]


@pytest.mark.parametrize("garbage", GARBAGE, ids=range(len(GARBAGE)))
def test_garbage_is_none(backend: Backend, now: datetime, garbage: str):
    assert backend.decoder.decode(garbage, now) is None


@pytest.mark.parametrize("mangle", ["truncated", "extended", "spaced", "doubled"])
def test_a_mangled_genuine_token_is_none(backend: Backend, issued, now: datetime, mangle: str):
    token, _ = issued
    mangled = {
        "truncated": token[: token.rindex(".")],
        "extended": token + ".x",
        "spaced": token.replace(".", " .", 1),
        "doubled": token + token,
    }[mangle]
    assert backend.decoder.decode(mangled, now) is None


# --- the algorithm is fixed -----------------------------------------------------------------


def test_issued_tokens_are_hs256(issued):
    token, _ = issued
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_a_token_with_alg_none_is_none(backend: Backend, issued, now: datetime):
    token, _ = issued
    payload = payload_of(token)
    unsigned = jwt.encode(payload, None, algorithm="none")
    assert jwt.get_unverified_header(unsigned)["alg"] == "none"
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    kept_signature = f"{header}.{token.split('.')[1]}.{token.split('.')[2]}"

    for forged in (unsigned, kept_signature, unsigned.rstrip(".")):
        assert backend.decoder.decode(forged, now) is None


@pytest.mark.parametrize(
    ("alg", "digest"),
    [
        ("HS384", hashlib.sha384),
        ("HS512", hashlib.sha512),
        ("RS256", hashlib.sha256),  # a public-key header, HMAC-signed with the secret
        ("ES256", hashlib.sha256),
        ("hs256", hashlib.sha256),
        ("HS256 ", hashlib.sha256),
    ],
)
def test_a_token_with_another_alg_signed_with_the_same_key_is_none(
    backend: Backend, issued, now: datetime, alg: str, digest
):
    token, _ = issued
    forged = forge({"alg": alg, "typ": "JWT"}, payload_of(token), backend.secret, digest)
    assert backend.decoder.decode(forged, now) is None
    control = forge({"alg": "HS256", "typ": "JWT"}, payload_of(token), backend.secret)
    assert backend.decoder.decode(control, now) is not None  # only the header differs


# --- genuine signature, wrong claims --------------------------------------------------------

ABSENT = object()  # the claim left out
CLAIMS_CHANGES = [
    pytest.param({"sub": ABSENT}, id="no sub"),
    pytest.param({"sid": ABSENT}, id="no sid"),
    pytest.param({"jti": ABSENT}, id="no jti"),
    pytest.param({"iat": ABSENT}, id="no iat"),
    pytest.param({"exp": ABSENT}, id="no exp"),
    pytest.param({"iss": ABSENT}, id="no iss"),
    pytest.param({"sub": "admin"}, id="sub not a uuid"),
    pytest.param({"sid": "admin"}, id="sid not a uuid"),
    pytest.param({"sub": 42}, id="sub a number"),
    pytest.param({"sub": None}, id="sub null"),
    pytest.param({"sid": 42}, id="sid a number"),
    pytest.param({"sid": ["x"]}, id="sid a list"),
    pytest.param({"exp": "tomorrow"}, id="exp a string"),
    pytest.param({"exp": 10**20}, id="exp beyond datetime"),
    pytest.param({"iat": -(10**20)}, id="iat beyond datetime"),
    pytest.param({"exp": float("nan")}, id="exp NaN"),
]


@pytest.mark.parametrize("changes", CLAIMS_CHANGES)
def test_a_genuinely_signed_token_with_missing_or_malformed_claims_is_none(
    backend: Backend, issued, now: datetime, changes: dict[str, Any]
):
    """Signed with the key: only a bug, a key shared with another service or an older version
    of this one makes such a token. Still None, never an exception."""
    token, _ = issued
    payload = payload_of(token)
    for name, value in changes.items():
        if value is ABSENT:
            del payload[name]
        else:
            payload[name] = value

    forged = forge({"alg": "HS256", "typ": "JWT"}, payload, backend.secret)

    assert backend.decoder.decode(forged, now) is None


# --- JWT specifics --------------------------------------------------------------------------


def test_a_secret_shorter_than_an_hs256_key_is_refused():
    with pytest.raises(ValueError):
        JwtAccessTokens("x" * 31, timedelta(minutes=15))
    JwtAccessTokens("x" * 32, timedelta(minutes=15))
