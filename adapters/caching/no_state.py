"""No session-state cache (CACHE_URL=none): every authenticated request reads the database."""

from __future__ import annotations

from uuid import UUID

from domain.session_state.model import Group, UserState


class NoUserStateStore:
    """Stores nothing, so every read misses and the owner rebuilds from the database; right
    for any number of workers, at the cost of a database read per request."""

    def read(self, user_id: UUID, *, reader: str) -> UserState | None:
        return None

    def write(self, state: UserState) -> frozenset[Group]:
        return frozenset()

    def delete(self, user_id: UUID) -> None:
        pass
