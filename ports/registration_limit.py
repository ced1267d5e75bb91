"""Bounding registrations: each costs a slow password hash, so a flood of them would take the
workers from everyone else."""

from __future__ import annotations

from typing import Protocol


class RegistrationLimit(Protocol):
    """Registrations per client address, and in all."""

    def admit(self, client: str) -> int:
        """Count a registration from `client` and return 0 when it may go on; otherwise the
        seconds until one may, counting nothing."""
        ...
