"""The backlog gauges' index: /metrics counts undelivered deliveries per flow, status and
reason from the index alone (docs/benchmarks.md, "Backlog gauges").

Revision ID: 0010
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_deliveries_backlog", "deliveries", ["status", "flow", "reason", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_backlog", table_name="deliveries")
