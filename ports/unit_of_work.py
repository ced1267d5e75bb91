"""The unit of work: one atomic transaction over the repositories, and the one publish rule."""

from __future__ import annotations

from typing import Protocol, Self

from domain.messages import Event
from ports.repositories import (
    AccountTokenRepository,
    LoginActivityRepository,
    SessionRepository,
    SubscriptionRepository,
    UserRepository,
    UserStateSourceRepository,
)


class UnitOfWork(Protocol):
    """Use as a context manager; nothing is written unless `commit()` is called.

    The one publish rule, for every command handler and event consumer. Inside the `with`
    block: change the aggregates and record the events (an aggregate's `record(...)`, or
    `record(...)` here for an event no aggregate records), then `commit()`, then write the
    UserState groups the handler owns, still inside the block. `commit()` writes every change
    atomically and publishes nothing. On leaving a block whose `commit()` succeeded, the unit of
    work publishes on its event bus, in order, every event collected in that block: by then
    the transaction is over and the owned state is written, so a subscriber never sees an
    event whose transaction did not commit nor a state older than it. A block that committed
    and then raises still publishes what it committed; a block left without committing rolls
    back and discards what was recorded, publishing nothing. Each `with` block, on the same
    object or not, starts a fresh collection.
    """

    users: UserRepository
    tokens: AccountTokenRepository
    sessions: SessionRepository
    activity: LoginActivityRepository
    subscriptions: SubscriptionRepository
    state_sources: UserStateSourceRepository

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc_info: object) -> None: ...

    def record(self, event: Event) -> None:
        """Collect an event to publish once this block has committed, after the aggregates'
        events recorded before it."""
        ...

    def commit(self) -> None: ...

    def rollback(self) -> None:
        """Undo what is not committed and discard the events recorded since the last commit."""
        ...


class ReadUnitOfWork(Protocol):
    """A read-only unit of work: what query handlers read with, and what a command handler reads
    with before its write (`read_uow`). Its unlocked user reads (by id, by email, a page of the
    list) may be answered by the read cache, which every write invalidated before its command
    returned; it records and commits nothing. A decision that must hold against a concurrent
    write is taken again in the write unit of work, under its lock."""

    users: UserRepository

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc_info: object) -> None: ...
