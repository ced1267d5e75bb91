"""Secrets: password hashing and random account tokens."""

from __future__ import annotations

from typing import Protocol


class PasswordHasher(Protocol):
    """Hashable: the login handler remembers its decoy hash per hasher."""

    def __hash__(self) -> int: ...

    def hash(self, password: str) -> str: ...

    def verify(self, password_hash: str, password: str) -> bool:
        """True when the password matches; never raises for a wrong password."""
        ...

    def needs_rehash(self, password_hash: str) -> bool: ...


class TokenGenerator(Protocol):
    """Random tokens sent to users, and the digest under which a token is stored."""

    def new(self) -> str: ...

    def digest(self, token: str) -> str: ...
