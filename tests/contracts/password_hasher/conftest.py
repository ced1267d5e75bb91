"""Backends for the PasswordHasher and TokenGenerator contract suites (adapters/security.py).

PasswordHasher: Argon2PasswordHasher with cheap parameters (the tests' own, tests/settings.py,
and a second set with two lanes), so that a hash costs a millisecond; the strength of argon2id
is argon2-cffi's concern. `make(**parameters)` builds a hasher with other parameters.

TokenGenerator: SecretsTokenGenerator, with `peer`, another instance (another worker) that must
agree on digests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from adapters.security import Argon2PasswordHasher, SecretsTokenGenerator
from ports.password_hasher import PasswordHasher
from ports.token_generator import TokenGenerator

PARAMETERS: dict[str, dict[str, int]] = {
    "argon2-cheap": {"time_cost": 1, "memory_cost": 8, "parallelism": 1},
    "argon2-two-lanes": {"time_cost": 2, "memory_cost": 16, "parallelism": 2},
}


@dataclass
class HasherBackend:
    name: str
    hasher: PasswordHasher
    parameters: dict[str, int]
    make: Callable[..., PasswordHasher]


@dataclass
class TokensBackend:
    name: str
    tokens: TokenGenerator
    peer: TokenGenerator


@pytest.fixture(params=list(PARAMETERS))
def backend(request: pytest.FixtureRequest) -> HasherBackend:
    parameters = PARAMETERS[request.param]

    def make(**changes: Any) -> PasswordHasher:
        return Argon2PasswordHasher(**{**parameters, **changes})

    return HasherBackend(request.param, make(), parameters, make)


@pytest.fixture(params=["secrets"])
def generator(request: pytest.FixtureRequest) -> TokensBackend:
    return TokensBackend(request.param, SecretsTokenGenerator(), SecretsTokenGenerator())
