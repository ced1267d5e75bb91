"""The stored form of each UserState group: compact JSON, the same in every store.

Short keys keep the entry small (it is read on every authenticated request); datetimes are ISO
8601 with their UTC offset; a session map is keyed by the session id's string form. Versions
are checked here once, so every store accepts and refuses the same ones.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from uuid import UUID

from domain.session_state.model import (
    AccountStatus,
    Group,
    Identity,
    LiveSession,
    Roles,
    Sessions,
    SubscriptionSummary,
    UserState,
    Versioned,
)

MAX_VERSION = 2**63 - 1  # a Redis integer; the tombstone (2**62) fits


class Hollow:
    """The value of a retired group: its version is kept, so a write older than it is refused
    as before, but it holds nothing, and a reader finds the group missing (and fills it from the
    database, at the database's versions, which the compare-and-set lets in)."""

    def __repr__(self) -> str:
        return "HOLLOW"


HOLLOW: Any = Hollow()
_HOLLOW_BYTES = b'"~"'  # no group's JSON is this string


def hollow_state(user_id: UUID, versions: Mapping[Group, int]) -> UserState:
    """A write that retires these groups at these versions."""
    return UserState(
        user_id, **{group.value: Versioned(version, HOLLOW) for group, version in versions.items()}
    )


def check_version(version: int) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or not 0 <= version <= MAX_VERSION:
        raise ValueError(f"a group version is an int in [0, 2**63), not {version!r}")
    return version


def _time(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("state datetimes must be timezone-aware")
    return value.astimezone(UTC).isoformat()


def _parse_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _identity(value: Identity) -> Any:
    return {"e": value.email, "s": str(value.status)}


def _sessions(value: Sessions) -> Any:
    live = {str(sid): [s.refresh_digest, _time(s.expires_at)] for sid, s in value.live.items()}
    return {"l": live, "t": _time(value.last_login_at)}


def _roles(value: Roles) -> Any:
    return sorted(value.roles)


def _subscription(value: SubscriptionSummary | None) -> Any:
    if value is None:
        return None
    ident = str(value.subscription_id) if value.subscription_id is not None else None
    return {"p": value.plan, "s": value.status, "e": _time(value.current_period_end), "i": ident}


def _parse_identity(data: Any) -> Identity:
    return Identity(data["e"], AccountStatus(data["s"]))


def _parse_sessions(data: Any) -> Sessions:
    # A live session always has an expiry; only the last login time may be null.
    live = {
        UUID(sid): LiveSession(digest, datetime.fromisoformat(at)) for sid, (digest, at) in data["l"].items()
    }
    return Sessions(live, _parse_time(data["t"]))


def _parse_roles(data: Any) -> Roles:
    return Roles(frozenset(data))


def _parse_subscription(data: Any) -> SubscriptionSummary | None:
    if data is None:
        return None
    ident = data.get("i")
    return SubscriptionSummary(
        data["p"], data["s"], _parse_time(data["e"]), UUID(ident) if ident is not None else None
    )


_ENCODERS: dict[Group, Callable[[Any], Any]] = {
    Group.IDENTITY: _identity,
    Group.SESSIONS: _sessions,
    Group.ROLES: _roles,
    Group.SUBSCRIPTION: _subscription,
}
_DECODERS: dict[Group, Callable[[Any], Any]] = {
    Group.IDENTITY: _parse_identity,
    Group.SESSIONS: _parse_sessions,
    Group.ROLES: _parse_roles,
    Group.SUBSCRIPTION: _parse_subscription,
}


def encode(group: Group, value: Any) -> bytes:
    """The JSON bytes of one group's value."""
    if value is HOLLOW:
        return _HOLLOW_BYTES
    return json.dumps(_ENCODERS[group](value), separators=(",", ":"), ensure_ascii=False).encode()


def decode(group: Group, data: bytes) -> Any:
    if data == _HOLLOW_BYTES:
        return HOLLOW
    return _DECODERS[group](json.loads(data))


@lru_cache(maxsize=4096)
def decode_cached(group: Group, data: bytes) -> Any:
    """`decode`, remembered: a group's stored bytes change only when it is written, and every
    request of a session reads the same ones. The values are immutable (frozen dataclasses,
    and session maps nobody changes), so sharing them is safe."""
    return decode(group, data)
