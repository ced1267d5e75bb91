"""The account token repository over SQLAlchemy Core. Token writes go to the unit of work's
transaction at once (the foreign key to the user is deferred to commit)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, func, insert, select, update

from adapters.sqlalchemy.tables import account_tokens as tokens
from domain.users.tokens import AccountToken, TokenPurpose


class SqlAlchemyAccountTokenRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add(self, token: AccountToken) -> None:
        row = asdict(token) | {"purpose": token.purpose.value}
        self._connection.execute(insert(tokens).values(row))

    def consume(self, digest: str, purpose: TokenPurpose, now: datetime) -> AccountToken | None:
        """One conditional UPDATE: the database decides which of two racing consumers wins
        (PostgreSQL re-checks the condition after the row lock is released; SQLite lets only
        one writer in at a time). A rollback gives the token back."""
        row = (
            self._connection.execute(
                update(tokens)
                .where(
                    tokens.c.digest == digest,
                    tokens.c.purpose == purpose.value,
                    tokens.c.used_at.is_(None),
                    tokens.c.expires_at > now,
                )
                .values(used_at=now)
                .returning(*tokens.c)
            )
            .mappings()
            .first()
        )
        return _to_token(row) if row is not None else None

    def revoke(self, user_id: UUID, purpose: TokenPurpose, now: datetime) -> None:
        self._connection.execute(
            update(tokens)
            .where(tokens.c.user_id == user_id, tokens.c.purpose == purpose.value, tokens.c.used_at.is_(None))
            .values(used_at=now)
        )

    def last_issued_at(self, user_id: UUID, purpose: TokenPurpose) -> datetime | None:
        return self._connection.scalar(
            select(func.max(tokens.c.created_at)).where(
                tokens.c.user_id == user_id, tokens.c.purpose == purpose.value
            )
        )


def _to_token(row: Any) -> AccountToken:
    return AccountToken(
        digest=row["digest"],
        user_id=row["user_id"],
        purpose=TokenPurpose(row["purpose"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        used_at=row["used_at"],
    )
