"""Tables of change notices: the changes, whom each was sent to (with their acknowledgement),
their attachments, and the key that signs acknowledgement links when the environment gives
none. Created by migration ``0013``."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Table, Text

from interlink.store.schema import BigId, UTCDateTime, metadata

changes = Table(
    "changes",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("system", String(100), nullable=False),
    Column("title", String(300), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("at", UTCDateTime, nullable=False),  # when it ships
    Column("description", Text, nullable=False),  # markdown
    Column("subject", Text, nullable=False),  # JSON: fields, codes, document, schema hash
    Column("affected", Text, nullable=False),  # JSON: flows with their reasons
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(100), nullable=False),
    Index("ix_changes_at", "at"),
)

change_recipients = Table(
    "change_recipients",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("change_id", BigId, ForeignKey("changes.id"), nullable=False),
    Column("system", String(100), nullable=False),
    Column("role", String(20), nullable=False),
    Column("name", String(200)),
    Column("email", String(300)),
    Column("notify", Text),  # an Apprise URL
    Column("notified_at", UTCDateTime),
    Column("notify_error", Text),
    Column("attempts", Integer, nullable=False),
    Column("next_at", UTCDateTime),  # when the notice is (tried) next; null once settled
    Column("reminded_at", UTCDateTime),
    Column("acked_at", UTCDateTime),
    Column("acked_by", String(300)),
    Index("ix_change_recipients_change", "change_id"),
    Index("ix_change_recipients_due", "next_at"),
)

change_attachments = Table(
    "change_attachments",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("change_id", BigId, ForeignKey("changes.id"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("filename", String(255), nullable=False),
    Column("content_type", String(60), nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("stored_as", String(300), nullable=False),  # path under the data directory
    Index("ix_change_attachments_change", "change_id"),
)

# One row: the key acknowledgement links are signed with when INTERLINK_SECRET_KEY is unset,
# shared by every process on the store (a link mailed by one is checked by another).
change_keys = Table(
    "change_keys",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("secret", String(200), nullable=False),
)
