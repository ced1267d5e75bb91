"""Access tokens as signed JWTs (PyJWT, HS256): sub, sid, exp, iat, jti."""

from __future__ import annotations

import math
import secrets
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from uuid import UUID

import jwt

from ports.access_tokens import AccessClaims

ALGORITHM = "HS256"
MIN_SECRET_BYTES = 32  # RFC 7518 §3.2: an HS256 key at least as long as the hash


class JwtAccessTokens:
    def __init__(self, secret: str, lifetime: timedelta, issuer: str = "user-service") -> None:
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"the signing secret must be at least {MIN_SECRET_BYTES} bytes")
        self._secret = secret
        self._lifetime = lifetime
        self._issuer = issuer
        # Only genuine tokens are remembered (a forgery is checked every time, so it cannot
        # push genuine ones out); expiry is still checked on every call.
        self._remembered = lru_cache(maxsize=8192)(self._verify)

    def issue(self, user_id: UUID, session_id: UUID, now: datetime) -> tuple[str, AccessClaims]:
        issued_at = now.replace(microsecond=0)  # JWT times are whole seconds: so is the lifetime,
        lifetime = timedelta(seconds=math.ceil(self._lifetime.total_seconds()))  # rounded up
        claims = AccessClaims(user_id, session_id, secrets.token_urlsafe(12), issued_at, issued_at + lifetime)
        payload = {
            "iss": self._issuer,
            "sub": str(user_id),
            "sid": str(session_id),
            "jti": claims.token_id,
            "iat": int(claims.issued_at.timestamp()),
            "exp": int(claims.expires_at.timestamp()),
        }
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM), claims

    def decode(self, token: str, now: datetime) -> AccessClaims | None:
        try:
            claims = self._remembered(token)
        except _NotGenuine:
            return None
        return claims if now < claims.expires_at else None

    def _verify(self, token: str) -> AccessClaims:
        """The claims of a token signed with this key; raises _NotGenuine for anything else.
        Remembered per token (see __init__): a client sends the same token with every request
        of its lifetime, and PyJWT's parsing and HMAC check cost more than the rest of an
        authenticated cache hit."""
        try:
            # Expiry is checked against the service's clock in `decode`, not PyJWT's.
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "require": ["sub", "sid", "jti", "iat", "exp"],
                },
            )
            claims = AccessClaims(
                UUID(payload["sub"]),
                UUID(payload["sid"]),
                str(payload["jti"]),
                datetime.fromtimestamp(payload["iat"], UTC),
                datetime.fromtimestamp(payload["exp"], UTC),
            )
        # AttributeError: a claim of another type than a string (UUID(42)), signed with the key.
        except (jwt.InvalidTokenError, ValueError, TypeError, AttributeError, OverflowError) as error:
            raise _NotGenuine() from error
        return claims


class _NotGenuine(Exception):
    """Raised, not returned, so that lru_cache never remembers a forgery."""
