"""The table of published contract versions, on the shared metadata (migration 0004)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, Integer, String, Table, Text, UniqueConstraint

from interlink.store.schema import BigId, UTCDateTime, metadata

contract_versions = Table(
    "contract_versions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("document", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("schema", Text, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("published_by", String(100), nullable=False),
    Column("published_at", UTCDateTime, nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("forced", Boolean, nullable=False, default=False),
    UniqueConstraint("document", "version", name="uq_contract_versions"),
    Index("ix_contract_versions_document", "document", "version"),
)
