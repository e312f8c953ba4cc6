"""Tables. Times are stored in UTC; :class:`UTCDateTime` makes that hold on every database.

Alembic migrations in ``store/migrations`` create exactly these tables; a test checks that the
migrated schema and this metadata agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; naive UTC text on SQLite."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(DateTime(timezone=True))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; times must be timezone-aware")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for big tables.
BigId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

documents = Table(
    "documents",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("type", String(100), nullable=False),
    Column("key", String(200), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("identity", String(300), nullable=False),
    Column("payload_hash", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("source", String(100), nullable=False),
    Column("scenario", String(100)),
    Column("deadline", UTCDateTime),
    Column("amount", String(60)),
    Column("received_at", UTCDateTime, nullable=False),
    # The upstream's W3C trace context, or intake's span's (migration 0015; interlink.tracing).
    Column("traceparent", String(55)),
    # Identity, revisions and idempotency keys belong to the submitting system (migration
    # 0007): one source can never make another's document a duplicate or a revision.
    UniqueConstraint("type", "source", "identity", name="uq_documents_identity"),
    UniqueConstraint("type", "source", "key", "revision", name="uq_documents_revision"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("document_id", String(32), nullable=False),
    Column("flow", String(100), nullable=False),
    Column("system", String(100), nullable=False),
    Column("key", String(200), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("status", String(12), nullable=False),
    Column("reason", String(24)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("failures", Integer, nullable=False, default=0),
    Column("next_at", UTCDateTime),
    Column("lease_until", UTCDateTime),
    Column("first_failure_at", UTCDateTime),
    Column("deadline", UTCDateTime),
    Column("probe", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime),
    Column("last_error", Text),
    Index("ix_deliveries_due", "status", "flow", "next_at"),
    Index("ix_deliveries_key", "flow", "key", "revision"),
    Index("ix_deliveries_document", "document_id"),
    Index("ix_deliveries_system_status", "system", "status"),
    Index("ix_deliveries_deadline", "flow", "status", "deadline"),
    # The backlog gauges count from this index alone (store/queries/backlog.py).
    Index("ix_deliveries_backlog", "status", "flow", "reason", "created_at"),
)

attempts = Table(
    "attempts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("delivery_id", BigInteger, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("elapsed_ms", Float, nullable=False),
    Column("status_code", Integer),
    Column("outcome", String(16), nullable=False),
    Column("detail", Text, nullable=False),
    Column("response", Text),
    Column("probe", Boolean, nullable=False, default=False),
    Index("ix_attempts_delivery", "delivery_id"),
)

audit = Table(
    "audit",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("action", String(60), nullable=False),
    Column("target", String(200), nullable=False),
    Column("detail", Text, nullable=False),
    Index("ix_audit_target", "target"),
)

events = Table(
    "events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("system", String(100)),
    Column("flow", String(100)),
    Column("detail", Text, nullable=False),
    Index("ix_events_at", "at"),
)

circuits = Table(
    "circuits",
    metadata,
    Column("system", String(100), primary_key=True),
    Column("state", String(8), nullable=False),
    Column("failures", Integer, nullable=False),
    Column("opened_at", UTCDateTime),
    Column("next_probe_at", UTCDateTime),
    Column("probe_interval", Float),
    Column("probing", Boolean, nullable=False, default=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

flow_state = Table(
    "flow_state",
    metadata,
    Column("flow", String(100), primary_key=True),
    Column("hold", String(24)),
    Column("since", UTCDateTime),
    Column("actor", String(100)),
    Column("note", Text),
)

workers = Table(
    "workers",
    metadata,
    Column("id", String(120), primary_key=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("heartbeat_at", UTCDateTime, nullable=False),
    # The worker's shares of the declared limits, as JSON {limit key: amount}; NULL for a
    # worker that publishes none (an older version). See engine.limits.
    Column("shares", Text),
    Column("released_at", UTCDateTime),  # when it last gave part of a share back
    Column("retired_at", UTCDateTime),  # stopped cleanly: holds nothing, counts no more
)

# -- the console's sign-in state (kept in the store so that every API process agrees) ---------

# One row per console session. ``id`` is the SHA-256 of the random id the signed cookie
# carries, so a copy of this table signs nobody in; ``password`` is a keyed fingerprint of the
# user's password when the session began, so a changed password ends the old sessions.
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("username", String(100), nullable=False),
    Column("password", String(64), nullable=False),
    Column("created", UTCDateTime, nullable=False),
    Column("expires", UTCDateTime, nullable=False),
    Column("revoked", UTCDateTime),
    Index("ix_console_sessions_expires", "expires"),
)

# One row per failed sign-in, kept for the throttle's window and pruned after it.
console_signin_failures = Table(
    "console_signin_failures",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("username", String(100), nullable=False),
    Column("address", String(64), nullable=False),
    Index("ix_console_signin_failures_user", "username", "at"),
    Index("ix_console_signin_failures_address", "address", "at"),
    Index("ix_console_signin_failures_at", "at"),
)
