"""Outgoing mail."""

from __future__ import annotations

from typing import Protocol

from domain.mail import Mail


class Mailer(Protocol):
    def send(self, mail: Mail) -> None:
        """Render and deliver the mail; raises when it could not be handed over."""
        ...
