"""Outgoing mail as the domain describes it; rendering and delivery belong to adapters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Mail:
    """A mail to render from `template` in `locale` with `params`, and send to `to`."""

    to: str
    template: str
    locale: str
    params: Mapping[str, Any] = field(default_factory=dict)
