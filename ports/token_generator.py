"""Random account tokens (confirmation, reset) and their stored digests."""

from __future__ import annotations

from typing import Protocol


class TokenGenerator(Protocol):
    """Random tokens sent to users, and the digest under which a token is stored."""

    def new(self) -> str: ...

    def digest(self, token: str) -> str: ...
