"""Sources: each source's cursor and lag, the rows intake refused, the files a drop took.

Revision ID: 0011
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from interlink.store.schema import BigId, UTCDateTime

revision = "0011"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "source_state",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("system", sa.String(100), nullable=False),
        sa.Column("cursor", sa.Text),
        sa.Column("paused", sa.Boolean, nullable=False),
        sa.Column("paused_at", UTCDateTime),
        sa.Column("paused_by", sa.String(100)),
        sa.Column("note", sa.Text),
        sa.Column("polled_at", UTCDateTime),
        sa.Column("accepted", sa.BigInteger, nullable=False),
        sa.Column("refused", sa.BigInteger, nullable=False),
        sa.Column("behind", sa.BigInteger),
        sa.Column("oldest_unread_at", UTCDateTime),
        sa.Column("behind_since", UTCDateTime),
        sa.Column("error", sa.Text),
        sa.Column("unreachable_since", UTCDateTime),
    )
    op.create_table(
        "source_problems",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("ref", sa.String(300), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("problems", sa.Text, nullable=False),
        sa.Column("row", sa.Text, nullable=False),
    )
    op.create_index("ix_source_problems_source", "source_problems", ["source", "id"])
    op.create_table(
        "source_files",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("accepted", sa.Integer, nullable=False),
        sa.Column("refused", sa.Integer, nullable=False),
    )
    op.create_index(
        "ix_source_files_hash", "source_files", ["source", "name", "sha256"], unique=True
    )


def downgrade() -> None:
    for table in ("source_files", "source_problems", "source_state"):
        op.drop_table(table)
