"""Published contract versions per document type.

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from interlink.store.schema import BigId, UTCDateTime

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contract_versions",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("document", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("schema", sa.Text, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("published_by", sa.String(100), nullable=False),
        sa.Column("published_at", UTCDateTime, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("forced", sa.Boolean, nullable=False),
        sa.UniqueConstraint("document", "version", name="uq_contract_versions"),
    )
    op.create_index("ix_contract_versions_document", "contract_versions", ["document", "version"])


def downgrade() -> None:
    op.drop_index("ix_contract_versions_document", table_name="contract_versions")
    op.drop_table("contract_versions")
