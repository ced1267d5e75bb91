"""What a UserState is built from, read from the in-memory database's repositories at once."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from ports.repositories import UserStateSource

if TYPE_CHECKING:
    from adapters.memory.sessions import InMemorySessionRepository
    from adapters.memory.subscriptions import InMemorySubscriptionRepository
    from adapters.memory.unit_of_work import InMemoryDatabase, InMemoryUserRepository


class InMemoryUserStateSourceRepository:
    def __init__(
        self,
        db: InMemoryDatabase,
        users: InMemoryUserRepository,
        sessions: InMemorySessionRepository,
        subscriptions: InMemorySubscriptionRepository,
    ) -> None:
        self._db = db
        self._users = users
        self._sessions = sessions
        self._subscriptions = subscriptions

    def get(self, user_id: UUID, now: datetime) -> UserStateSource | None:
        # Under the database's (reentrant) lock all three reads see one committed state, as the
        # SQL adapter's one statement does; none of them takes a row lock.
        with self._db.lock:
            user = self._users.get(user_id)
            sessions = self._sessions.get(user_id, now) if user is not None else None
            subscriptions = self._subscriptions.of_user(user_id) if user is not None else None
        if user is None or sessions is None or subscriptions is None:
            return None
        return UserStateSource(user, sessions, subscriptions)
