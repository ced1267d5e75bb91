"""Identity map and change tracking shared by the repositories of every backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from domain.messages import Event
from domain.users.model import User


@dataclass
class Changes:
    inserts: list[User] = field(default_factory=list)
    updates: list[tuple[User, int]] = field(default_factory=list)  # (user, version loaded)
    deletes: list[tuple[User, int]] = field(default_factory=list)


class UserTracker:
    """Remembers every user a unit of work added, loaded or removed, and the version each was
    loaded at, so that commit writes exactly the changed ones, each conditional on that
    version (optimistic locking), and the unit of work can collect their events."""

    def __init__(self) -> None:
        self._loaded: dict[UUID, tuple[User, int]] = {}
        self._added: dict[UUID, User] = {}
        self._removed: dict[UUID, User] = {}

    def known(self, user_id: UUID) -> User | None:
        if user_id in self._removed:
            return None
        if user_id in self._added:
            return self._added[user_id]
        entry = self._loaded.get(user_id)
        return entry[0] if entry else None

    def loaded(self, user: User) -> User | None:
        """Register a user read from storage; returns the instance already tracked, if any,
        and None for one this unit of work removed."""
        if user.id in self._removed:
            return None
        return self.known(user.id) or self._loaded.setdefault(user.id, (user, user.version))[0]

    def added(self, user: User) -> None:
        self._added[user.id] = user

    def removed(self, user: User) -> None:
        if self._added.pop(user.id, None) is None:
            self._removed[user.id] = user

    def changes(self) -> Changes:
        changes = Changes(inserts=list(self._added.values()))
        for user_id, (user, version) in self._loaded.items():
            if user_id in self._removed:
                changes.deletes.append((user, version))
            elif user.version != version:
                changes.updates.append((user, version))
        return changes

    def seen(self) -> list[User]:
        users = {user_id: user for user_id, (user, _) in self._loaded.items()}
        users.update(self._added)
        users.update(self._removed)
        return list(users.values())

    def drain_events(self) -> list[Event]:
        """The events the tracked aggregates recorded, taken from them: ordered by time, each
        aggregate's in the order recorded (the sort is stable)."""
        events = []
        for user in self.seen():
            events.extend(user.events)
            user.events.clear()
        return sorted(events, key=lambda event: event.occurred_at)

    def clear(self) -> None:
        self._loaded.clear()
        self._added.clear()
        self._removed.clear()
