"""Change notices: changes, their recipients and acknowledgements, attachments, link key.

Revision ID: 0013
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from interlink.store.schema import BigId, UTCDateTime

revision = "0013"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "changes",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("system", sa.String(100), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("affected", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
    )
    op.create_index("ix_changes_at", "changes", ["at"])
    op.create_table(
        "change_recipients",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("change_id", BigId, sa.ForeignKey("changes.id"), nullable=False),
        sa.Column("system", sa.String(100), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("name", sa.String(200)),
        sa.Column("email", sa.String(300)),
        sa.Column("notify", sa.Text),
        sa.Column("notified_at", UTCDateTime),
        sa.Column("notify_error", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_at", UTCDateTime),
        sa.Column("reminded_at", UTCDateTime),
        sa.Column("acked_at", UTCDateTime),
        sa.Column("acked_by", sa.String(300)),
    )
    op.create_index("ix_change_recipients_change", "change_recipients", ["change_id"])
    op.create_index("ix_change_recipients_due", "change_recipients", ["next_at"])
    op.create_table(
        "change_attachments",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("change_id", BigId, sa.ForeignKey("changes.id"), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(60), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("stored_as", sa.String(300), nullable=False),
    )
    op.create_index("ix_change_attachments_change", "change_attachments", ["change_id"])
    op.create_table(
        "change_keys",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("secret", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    for table in ("change_keys", "change_attachments", "change_recipients", "changes"):
        op.drop_table(table)
