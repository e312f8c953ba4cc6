"""Alerts (messages and the alerter's cursor) and the incident register.

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from interlink.store.schema import BigId, UTCDateTime

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("rule", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("system", sa.String(100)),
        sa.Column("flow", sa.String(100)),
        sa.Column("recipients", sa.Text, nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_at", UTCDateTime),
        sa.Column("sent_at", UTCDateTime),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_alerts_due", "alerts", ["status", "next_at"])
    op.create_index("ix_alerts_at", "alerts", ["at"])
    op.create_table(
        "alert_cursor",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("last_id", BigId, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    # Alerting starts from here: events written before it existed are history, not news.
    op.execute(
        "INSERT INTO alert_cursor (name, last_id, state, updated_at) "
        "SELECT 'alerter', COALESCE(MAX(id), 0), '{}', CURRENT_TIMESTAMP FROM events"
    )
    op.create_table(
        "incidents",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("category", sa.String(60), nullable=False),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("status", sa.String(14), nullable=False),
        sa.Column("registered_at", UTCDateTime, nullable=False),
        sa.Column("registered_by", sa.String(100), nullable=False),
        sa.Column("assignee", sa.String(100)),
        sa.Column("systems", sa.Text, nullable=False),
        sa.Column("flows", sa.Text, nullable=False),
        sa.Column("documents", sa.Text, nullable=False),
        sa.Column("resolution", sa.Text),
        sa.Column("resolved_at", UTCDateTime),
        sa.Column("resolved_by", sa.String(100)),
        sa.Column("source_key", sa.String(300)),
        sa.Column("occurrences", sa.Integer, nullable=False),
        sa.Column("last_seen_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_incidents_status", "incidents", ["status"])
    op.create_index("ix_incidents_source", "incidents", ["source_key", "status"])
    op.create_table(
        "incident_entries",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("incident_id", BigId, sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
    )
    op.create_index("ix_incident_entries_incident", "incident_entries", ["incident_id"])
    op.create_table(
        "incident_attachments",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("incident_id", BigId, sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(60), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("stored_as", sa.String(300), nullable=False),
    )
    op.create_index("ix_incident_attachments_incident", "incident_attachments", ["incident_id"])


def downgrade() -> None:
    for table in (
        "incident_attachments",
        "incident_entries",
        "incidents",
        "alert_cursor",
        "alerts",
    ):
        op.drop_table(table)
