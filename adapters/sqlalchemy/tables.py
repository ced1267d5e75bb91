# Over 200 lines: every table of the schema in one place, as the migrations build it.
"""The relational schema, as SQLAlchemy Core tables.

The database itself is built by the Alembic migrations; a test checks that they agree.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    Uuid,
)

# Deterministic constraint names, so migrations can refer to them and errors can be recognised.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
EMAIL_UNIQUE = "uq_users_email"
PAYMENT_REFERENCE_UNIQUE = "uq_payments_reference"

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime, always stored and returned in UTC.

    SQLite has no timezone type: SQLAlchemy writes the wall-clock digits and drops the offset,
    so values are converted to UTC before they are written and tagged UTC when read back.
    PostgreSQL returns them in the session time zone; they are converted to UTC as well.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: a time zone is required")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


users = Table(
    "users",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("email", String(255), nullable=False, unique=True),
    Column("initials", String(255), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("confirmed", Boolean, nullable=False),
    Column("roles", JSON, nullable=False),  # sorted list of role names
    Column("status", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    # The auth context's columns, never written by the User aggregate: the sessions version
    # (compare-and-set on every change to the user's sessions) and the last login.
    Column("session_version", Integer, nullable=False, server_default="0"),
    Column("last_login_at", UtcDateTime, nullable=True),
    # The subscriptions context's: compare-and-set on every change to the user's subscriptions.
    Column("subscription_version", Integer, nullable=False, server_default="0"),
)

account_tokens = Table(
    "account_tokens",
    metadata,
    Column("digest", String(64), primary_key=True),
    # Deferred: a token may be written before the user it belongs to, who is inserted at commit.
    Column(
        "user_id",
        Uuid,
        ForeignKey("users.id", ondelete="CASCADE", deferrable=True, initially="DEFERRED"),
        nullable=False,
    ),
    Column("purpose", String(32), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("used_at", UtcDateTime, nullable=True),
    Index("ix_account_tokens_user_id_purpose", "user_id", "purpose"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("refresh_digest", String(64), nullable=False),  # the current refresh token's
    Column("created_at", UtcDateTime, nullable=False),
    Column("refreshed_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("ended_at", UtcDateTime, nullable=True),
    Column("end_reason", String(32), nullable=True),
    Index("ix_sessions_user_id", "user_id"),
)

# Every refresh token ever issued, by digest: a rotated one presented again ends its session.
refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("session_id", Uuid, ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    Column("issued_at", UtcDateTime, nullable=False),
    Index("ix_refresh_tokens_session_id", "session_id"),
)

login_activity = Table(
    "login_activity",
    metadata,
    Column("id", Uuid, primary_key=True),  # the event's id: a redelivered event adds nothing
    Column("user_id", Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("client_address", String(64), nullable=True),
    Column("user_agent", String(255), nullable=True),
    Index("ix_login_activity_user_id_occurred_at", "user_id", "occurred_at"),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("plan", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("current_period_start", UtcDateTime, nullable=True),
    Column("current_period_end", UtcDateTime, nullable=True),
    Column("activated_at", UtcDateTime, nullable=True),
    Column("cancelled_at", UtcDateTime, nullable=True),
    Column("version", Integer, nullable=False),
    Index("ix_subscriptions_user_id", "user_id"),
    # The sweep's search: active subscriptions whose period is over.
    Index("ix_subscriptions_status_current_period_end", "status", "current_period_end"),
)

payments = Table(
    "payments",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("subscription_id", Uuid, ForeignKey("subscriptions.id", ondelete="CASCADE"), nullable=False),
    # The payer's own id for the payment: unique, so one payment is never recorded twice.
    Column("reference", String(255), nullable=False, unique=True),
    Column("amount", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("source", String(255), nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("applied_at", UtcDateTime, nullable=True),
    Index("ix_payments_subscription_id", "subscription_id"),
)

# The transactional outbox: every event's envelope, written in the transaction of the change that
# raised it; the relay claims unsent rows in position order, publishes them and marks them sent.
outbox = Table(
    "outbox",
    metadata,
    Column("position", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("event_id", Uuid, nullable=False, unique=True),
    Column("type", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("correlation_id", String(200), nullable=False),
    Column("causation_id", String(200), nullable=True),
    Column("locale", String(16), nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("claimed_until", UtcDateTime, nullable=True),
    Column("sent_at", UtcDateTime, nullable=True),
    Index("ix_outbox_sent_at_position", "sent_at", "position"),
)

# What each worker subscriber has processed, recorded in the transaction of its own writes:
# a redelivered or duplicated event has no second effect.
inbox = Table(
    "inbox",
    metadata,
    Column("event_id", Uuid, primary_key=True),
    Column("subscriber", String(200), primary_key=True),
    Column("processed_at", UtcDateTime, nullable=False),
)
