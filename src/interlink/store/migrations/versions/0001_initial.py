"""Documents, deliveries, attempts, audit log, events, circuits and flow holds.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from interlink.store.schema import BigId, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "documents",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("identity", sa.String(300), nullable=False),
        sa.Column("payload_hash", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("scenario", sa.String(100)),
        sa.Column("deadline", UTCDateTime),
        sa.Column("amount", sa.String(60)),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("type", "identity", name="uq_documents_identity"),
        sa.UniqueConstraint("type", "key", "revision", name="uq_documents_revision"),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("document_id", sa.String(32), nullable=False),
        sa.Column("flow", sa.String(100), nullable=False),
        sa.Column("system", sa.String(100), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("reason", sa.String(24)),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("next_at", UTCDateTime),
        sa.Column("lease_until", UTCDateTime),
        sa.Column("first_failure_at", UTCDateTime),
        sa.Column("deadline", UTCDateTime),
        sa.Column("probe", sa.Boolean, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("delivered_at", UTCDateTime),
        sa.Column("last_error", sa.Text),
    )
    op.create_index("ix_deliveries_due", "deliveries", ["status", "flow", "next_at"])
    op.create_index("ix_deliveries_key", "deliveries", ["flow", "key", "revision"])
    op.create_index("ix_deliveries_document", "deliveries", ["document_id"])
    op.create_index("ix_deliveries_system_status", "deliveries", ["system", "status"])
    op.create_index("ix_deliveries_deadline", "deliveries", ["flow", "status", "deadline"])
    op.create_table(
        "attempts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.BigInteger, nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("elapsed_ms", sa.Float, nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("response", sa.Text),
        sa.Column("probe", sa.Boolean, nullable=False),
    )
    op.create_index("ix_attempts_delivery", "attempts", ["delivery_id"])
    op.create_table(
        "audit",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("action", sa.String(60), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_audit_target", "audit", ["target"])
    op.create_table(
        "events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("system", sa.String(100)),
        sa.Column("flow", sa.String(100)),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_events_at", "events", ["at"])
    op.create_table(
        "circuits",
        sa.Column("system", sa.String(100), primary_key=True),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("opened_at", UTCDateTime),
        sa.Column("next_probe_at", UTCDateTime),
        sa.Column("probe_interval", sa.Float),
        sa.Column("probing", sa.Boolean, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "flow_state",
        sa.Column("flow", sa.String(100), primary_key=True),
        sa.Column("hold", sa.String(24)),
        sa.Column("since", UTCDateTime),
        sa.Column("actor", sa.String(100)),
        sa.Column("note", sa.Text),
    )

    op.create_table(
        "workers",
        sa.Column("id", sa.String(120), primary_key=True),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("heartbeat_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "flow_state",
        "circuits",
        "events",
        "audit",
        "attempts",
        "deliveries",
        "documents",
    ):
        op.drop_table(table)
