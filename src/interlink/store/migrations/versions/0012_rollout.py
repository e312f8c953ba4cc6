"""Rollout stages: the run-time stage of each rolled-out flow.

Revision ID: 0012
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from interlink.store.schema import UTCDateTime

revision = "0012"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rollout_stages",
        sa.Column("flow", sa.String(100), primary_key=True),
        sa.Column("stage", sa.String(8), nullable=False),
        sa.Column("since", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rollout_stages")
