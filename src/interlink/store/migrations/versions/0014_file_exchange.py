"""File exchange: batch files, their lines and the result files read back.

Revision ID: 0014
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from interlink.store.schema import BigId, UTCDateTime

revision = "0014"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "file_batches",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("system", sa.String(100), nullable=False),
        sa.Column("flow", sa.String(100), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("lines", sa.Integer, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("content", sa.LargeBinary),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("tries", sa.Integer, nullable=False),
        sa.Column("next_try_at", UTCDateTime),
        sa.Column("last_error", sa.Text),
        sa.Column("sent_at", UTCDateTime),
        sa.Column("result_due_at", UTCDateTime),
        sa.Column("result_missing_at", UTCDateTime),
        sa.Column("answered", sa.Integer, nullable=False),
        sa.UniqueConstraint("system", "name", name="uq_file_batches_name"),
    )
    op.create_index("ix_file_batches_flow", "file_batches", ["flow", "day", "seq"])
    op.create_table(
        "file_lines",
        sa.Column("batch_id", sa.BigInteger, primary_key=True),
        sa.Column("line", sa.Integer, primary_key=True),
        sa.Column("delivery_id", sa.BigInteger, nullable=False),
        sa.Column("ref", sa.String(200), nullable=False),
        sa.Column("verdict", sa.String(16)),
        sa.Column("answered_at", UTCDateTime),
        sa.Column("result_id", sa.BigInteger),
        sa.Column("result_line", sa.Integer),
    )
    op.create_index("ix_file_lines_delivery", "file_lines", ["delivery_id"])
    op.create_index("ix_file_lines_ref", "file_lines", ["ref"])
    op.create_table(
        "file_results",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("system", sa.String(100), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("fetched_at", UTCDateTime, nullable=False),
        sa.Column("lines", sa.Integer, nullable=False),
        sa.Column("accepted", sa.Integer, nullable=False),
        sa.Column("refused", sa.Integer, nullable=False),
        sa.Column("problems", sa.Text, nullable=False),
        sa.UniqueConstraint("system", "name", name="uq_file_results_name"),
    )


def downgrade() -> None:
    for table in ("file_results", "file_lines", "file_batches"):
        op.drop_table(table)
