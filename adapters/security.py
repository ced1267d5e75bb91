"""Password hashing (argon2id) and random account tokens."""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import argon2
from argon2.exceptions import InvalidHashError, VerificationError

from domain.errors import Busy


class Argon2PasswordHasher:
    """argon2id with argon2-cffi's defaults (RFC 9106 low-memory profile) unless tuned down,
    e.g. for tests, through the constructor.

    At most `concurrency` hashes or verifications run at once in this process (argon2-cffi
    releases the GIL, so threads would otherwise hash on every core and leave none to the
    reads); a call waits up to `wait` seconds for its turn, then raises Busy (a 503)."""

    def __init__(
        self,
        time_cost: int | None = None,
        memory_cost: int | None = None,
        parallelism: int | None = None,
        *,
        concurrency: int = 1,
        wait: float = 5.0,
    ) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=argon2.DEFAULT_TIME_COST if time_cost is None else time_cost,
            memory_cost=argon2.DEFAULT_MEMORY_COST if memory_cost is None else memory_cost,
            parallelism=argon2.DEFAULT_PARALLELISM if parallelism is None else parallelism,
        )
        self._turns = threading.BoundedSemaphore(concurrency)
        self._wait = wait

    def hash(self, password: str) -> str:
        with self._turn():
            return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            with self._turn():
                return self._hasher.verify(password_hash, password)
        # UnicodeError: a password or a stored hash that cannot be encoded (a lone surrogate, a
        # non-ASCII character in a hash) is no match either.
        except (VerificationError, InvalidHashError, UnicodeError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)

    @contextmanager
    def _turn(self) -> Iterator[None]:
        if not self._turns.acquire(timeout=self._wait):
            raise Busy()
        try:
            yield
        finally:
            self._turns.release()


class SecretsTokenGenerator:
    """256-bit URL-safe tokens. They are random, so a fast SHA-256 digest is enough to store
    them: there is nothing to brute-force that a slow hash would protect."""

    def new(self) -> str:
        return secrets.token_urlsafe(32)

    def digest(self, token: str) -> str:
        # surrogatepass: a malformed token (a lone surrogate) digests to nothing stored
        # rather than failing to encode.
        return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
