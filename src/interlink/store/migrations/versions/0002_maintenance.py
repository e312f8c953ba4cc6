"""Maintenance windows, the deliveries each window held, and deadline reports.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from interlink.store.schema import BigId, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "maintenance_windows",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("system", sa.String(100), nullable=False),
        sa.Column("start_at", UTCDateTime, nullable=False),
        sa.Column("end_at", UTCDateTime, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("short_notice", sa.Boolean, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("cancelled_at", UTCDateTime),
        sa.Column("cancelled_by", sa.String(100)),
        sa.Column("reminded_at", UTCDateTime),
        sa.Column("started_at", UTCDateTime),
        sa.Column("ended_at", UTCDateTime),
        sa.Column("drained_at", UTCDateTime),
        sa.Column("held_count", sa.Integer),
    )
    op.create_index("ix_maintenance_windows_system", "maintenance_windows", ["system", "end_at"])
    op.create_table(
        "maintenance_held",
        sa.Column("window_id", sa.BigInteger, primary_key=True),
        sa.Column("delivery_id", sa.BigInteger, primary_key=True),
    )
    op.create_table(
        "deadline_reports",
        sa.Column("delivery_id", sa.BigInteger, primary_key=True),
        sa.Column("at_risk_at", UTCDateTime),
        sa.Column("missed_at", UTCDateTime),
    )


def downgrade() -> None:
    for table in ("deadline_reports", "maintenance_held", "maintenance_windows"):
        op.drop_table(table)
