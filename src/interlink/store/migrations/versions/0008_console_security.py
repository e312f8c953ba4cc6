"""Console sessions that can be revoked, and the sign-in throttle's failures.

Revision ID: 0008
Revises: 0001
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from interlink.store.schema import BigId, UTCDateTime

revision = "0008"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("password", sa.String(64), nullable=False),
        sa.Column("created", UTCDateTime, nullable=False),
        sa.Column("expires", UTCDateTime, nullable=False),
        sa.Column("revoked", UTCDateTime),
    )
    op.create_index("ix_console_sessions_expires", "console_sessions", ["expires"])
    op.create_table(
        "console_signin_failures",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
    )
    op.create_index(
        "ix_console_signin_failures_user", "console_signin_failures", ["username", "at"]
    )
    op.create_index(
        "ix_console_signin_failures_address", "console_signin_failures", ["address", "at"]
    )
    op.create_index("ix_console_signin_failures_at", "console_signin_failures", ["at"])


def downgrade() -> None:
    op.drop_index("ix_console_signin_failures_at", "console_signin_failures")
    op.drop_index("ix_console_signin_failures_address", "console_signin_failures")
    op.drop_index("ix_console_signin_failures_user", "console_signin_failures")
    op.drop_table("console_signin_failures")
    op.drop_index("ix_console_sessions_expires", "console_sessions")
    op.drop_table("console_sessions")
