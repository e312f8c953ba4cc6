"""Reconciliation runs and the differences they found.

Revision ID: 0005
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from interlink.store.schema import BigId, UTCDateTime

revision = "0005"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reconcile_runs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("flow", sa.String(100), nullable=False),
        sa.Column("since", UTCDateTime),
        sa.Column("until", UTCDateTime),
        sa.Column("source", sa.String(300), nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime),
        sa.Column("counts", sa.Text, nullable=False),
        sa.Column("totals", sa.Text, nullable=False),
        sa.Column("complete", sa.Boolean, nullable=False),
        sa.Column("problems", sa.Text, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
    )
    op.create_index("ix_reconcile_runs_flow", "reconcile_runs", ["flow", "id"])
    op.create_table(
        "reconcile_items",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("category", sa.String(24), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("revision", sa.Integer),
        sa.Column("ours_amount", sa.String(60)),
        sa.Column("theirs_amount", sa.String(60)),
        sa.Column("ours_status", sa.String(100)),
        sa.Column("theirs_status", sa.String(100)),
        sa.Column("line", sa.Integer),
        sa.Column("delivery_id", sa.Integer),
        sa.Column("delivery_status", sa.String(12)),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_reconcile_items_run", "reconcile_items", ["run_id", "category", "id"])


def downgrade() -> None:
    op.drop_table("reconcile_items")
    op.drop_table("reconcile_runs")
