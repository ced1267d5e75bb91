"""Counting failed logins."""

from __future__ import annotations

from typing import Protocol


class LoginThrottle(Protocol):
    """Counts failed logins per account and per client address.

    `account` is an opaque key for the account (derived from the email whether or not an
    account has it, so throttling reveals nothing), `client` the client's address.
    """

    def retry_after(self, account: str, client: str) -> int:
        """Seconds until a login attempt is allowed again; 0 when it is allowed now."""
        ...

    def failed(self, account: str, client: str) -> None: ...

    def succeeded(self, account: str, client: str) -> None:
        """Forget this client's failures on this account (not other clients')."""
        ...
