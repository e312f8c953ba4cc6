"""Identity by source: a document's identity and its revisions are unique per submitting system.

Before, (type, identity) and (type, key, revision) were unique across every source of a type,
so one system could make another's document a duplicate, or revise its key. Relaxing the
constraints cannot fail on stored rows; the downgrade can, when two sources share a key.

Revision ID: 0007
Revises: 0001
Create Date: 2026-12-10
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite cannot alter a constraint: batch mode copies the table (env.py turns it on there).
    with op.batch_alter_table("documents") as batch:
        batch.drop_constraint("uq_documents_identity", type_="unique")
        batch.drop_constraint("uq_documents_revision", type_="unique")
        batch.create_unique_constraint("uq_documents_identity", ["type", "source", "identity"])
        batch.create_unique_constraint(
            "uq_documents_revision", ["type", "source", "key", "revision"]
        )


def downgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.drop_constraint("uq_documents_identity", type_="unique")
        batch.drop_constraint("uq_documents_revision", type_="unique")
        batch.create_unique_constraint("uq_documents_identity", ["type", "identity"])
        batch.create_unique_constraint("uq_documents_revision", ["type", "key", "revision"])
