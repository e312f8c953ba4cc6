"""Trace context kept with each document: the upstream's W3C ``traceparent`` (or intake's
span's), the parent of its deliveries' spans (docs/transports.md, "Trace context").

Revision ID: 0015
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("documents", sa.Column("traceparent", sa.String(55), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("traceparent")
