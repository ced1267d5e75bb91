"""Backends for the AccessTokens contract suite: JwtAccessTokens, the one adapter, decoding
with the instance that issued (its memory of genuine tokens warm) and with another instance on
the same secret (another worker: nothing remembered).

Each backend has `issuer` (issues), `decoder` (decodes), the `lifetime` of the tokens and a
`make(secret=..., lifetime=..., issuer=...)` for instances with other settings.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest

from adapters.jwt_tokens import JwtAccessTokens
from ports.access_tokens import AccessTokens

LIFETIME = timedelta(minutes=15)


@dataclass
class Backend:
    name: str
    issuer: AccessTokens
    decoder: AccessTokens
    secret: str
    lifetime: timedelta
    make: Callable[..., AccessTokens]


def _backend(name: str, same_instance: bool) -> Backend:
    secret = secrets.token_urlsafe(32)

    def make(**options) -> JwtAccessTokens:
        return JwtAccessTokens(options.pop("secret", secret), options.pop("lifetime", LIFETIME), **options)

    issuer = make()
    return Backend(name, issuer, issuer if same_instance else make(), secret, LIFETIME, make)


@pytest.fixture(params=["jwt", "jwt-other-worker"])
def backend(request: pytest.FixtureRequest) -> Backend:
    return _backend(request.param, same_instance=request.param == "jwt")
