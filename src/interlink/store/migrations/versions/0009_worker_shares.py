"""Worker shares: each worker's published part of every declared limit.

Revision ID: 0009
Revises: 0001
Create Date: 2026-12-12
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from interlink.store.schema import UTCDateTime

revision = "0009"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        batch.add_column(sa.Column("shares", sa.Text))
        batch.add_column(sa.Column("released_at", UTCDateTime))
        batch.add_column(sa.Column("retired_at", UTCDateTime))


def downgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        batch.drop_column("retired_at")
        batch.drop_column("released_at")
        batch.drop_column("shares")
