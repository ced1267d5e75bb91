"""Tokens that tell a device that has logged in to an account before: the login throttle spares
such a device the limits an attacker's failures can set off for everyone else."""

from __future__ import annotations

from typing import Protocol


class DeviceTokens(Protocol):
    def issue(self, account: str) -> str:
        """A new device's token for the account (its throttle key)."""
        ...

    def device_of(self, token: str, account: str) -> str | None:
        """The device a genuine token of this account names; None for anything else (a forged
        token, another account's, a malformed one)."""
        ...
