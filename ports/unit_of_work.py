"""The unit of work: one atomic transaction over the repositories."""

from __future__ import annotations

from typing import Protocol, Self

from ports.repositories import (
    AccountTokenRepository,
    LoginActivityRepository,
    SessionRepository,
    SubscriptionRepository,
    UserRepository,
)


class UnitOfWork(Protocol):
    """Use as a context manager; nothing is written unless `commit()` is called.

    `commit()` writes every change atomically and then publishes the events the aggregates
    recorded, in order, to the event bus: subscribers never see an event whose transaction
    did not commit. Leaving the block without committing rolls back.
    """

    users: UserRepository
    tokens: AccountTokenRepository
    sessions: SessionRepository
    activity: LoginActivityRepository
    subscriptions: SubscriptionRepository

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc_info: object) -> None: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...
