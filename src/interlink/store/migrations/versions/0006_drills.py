"""Drill runs.

Revision ID: 0006
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from interlink.store.schema import BigId, UTCDateTime

revision = "0006"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drill_runs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("file", sa.Text, nullable=False),
        sa.Column("started", UTCDateTime, nullable=False),
        sa.Column("finished", UTCDateTime, nullable=False),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("flows", sa.Text, nullable=False),
        sa.Column("outages", sa.Text, nullable=False),
        sa.Column("report", sa.Text, nullable=False),
    )
    op.create_index("ix_drill_runs_finished", "drill_runs", ["finished"])


def downgrade() -> None:
    op.drop_index("ix_drill_runs_finished", "drill_runs")
    op.drop_table("drill_runs")
