"""Counting failed logins."""

from __future__ import annotations

from typing import Protocol


class LoginThrottle(Protocol):
    """Counts failed logins per account and per client address.

    `account` is an opaque key for the account (derived from the email whether or not an
    account has it, so throttling reveals nothing), `client` the client's address, `device` a
    device that has logged in to this account before (ports.device_tokens), or None: a known
    device's failures count against that device only, and no one else's count against it.
    """

    def retry_after(self, account: str, client: str, device: str | None = None) -> int:
        """Seconds until a login attempt is allowed again; 0 when it is allowed now."""
        ...

    def failed(self, account: str, client: str, device: str | None = None) -> None: ...

    def succeeded(self, account: str, client: str, device: str | None = None) -> None:
        """Forget this client's (or device's) failures on this account, not others'."""
        ...
