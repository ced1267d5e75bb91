"""The state store as an event consumer sees it: it may read every group and write only the
groups it owns (DESIGN §3). A write of any other group is refused before it reaches the store,
so the consumer fails, is retried and dead-lettered, loudly, and the state stays as it was."""

from __future__ import annotations

import logging
from uuid import UUID

from domain.session_state.model import Group, UserState
from ports.session_state import UserStateStore

log = logging.getLogger("user_service.state")


class GroupNotOwned(Exception):
    """An event consumer tried to write a UserState group it does not own."""


class OwnedGroups:
    def __init__(self, store: UserStateStore, owned: frozenset[Group], consumer: str) -> None:
        self._store = store
        self.owned = owned
        self.consumer = consumer

    def read(self, user_id: UUID, *, reader: str) -> UserState | None:
        return self._store.read(user_id, reader=reader)

    def write(self, state: UserState) -> frozenset[Group]:
        foreign = sorted(set(state.groups()) - self.owned)
        if foreign:
            log.error(
                "operation=state.write_refused consumer=%s groups=%s: not its own",
                self.consumer,
                ",".join(foreign),
            )
            raise GroupNotOwned(f"{self.consumer} may not write {', '.join(foreign)} of UserState")
        return self._store.write(state)

    def delete(self, user_id: UUID) -> None:
        raise GroupNotOwned(f"{self.consumer} may not delete UserState entries")
