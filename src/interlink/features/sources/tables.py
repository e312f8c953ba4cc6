"""Tables of the sources feature, on the shared metadata (migration ``0011``).

``source_state`` holds each source's cursor, advanced in the same transaction that stores the
documents it read, so that a crash neither loses nor repeats a row; ``source_problems`` the
rows intake refused (kept, never lost); ``source_files`` the files a drop folder took, by hash.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, String, Table, Text

from interlink.store.schema import BigId, UTCDateTime, metadata

source_state = Table(
    "source_state",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("system", String(100), nullable=False),
    # The cursor as JSON: an id, or [updated_at, id]; NULL before the first row.
    Column("cursor", Text),
    Column("paused", Boolean, nullable=False, default=False),
    Column("paused_at", UTCDateTime),
    Column("paused_by", String(100)),
    Column("note", Text),
    Column("polled_at", UTCDateTime),
    Column("accepted", BigInteger, nullable=False, default=0),
    Column("refused", BigInteger, nullable=False, default=0),
    Column("behind", BigInteger),
    Column("oldest_unread_at", UTCDateTime),
    Column("behind_since", UTCDateTime),
    Column("error", Text),
    Column("unreachable_since", UTCDateTime),
)

source_problems = Table(
    "source_problems",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("source", String(100), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    # Where the row came from: the upstream row id, or file:line.
    Column("ref", String(300), nullable=False),
    Column("message", Text, nullable=False),
    Column("problems", Text, nullable=False),
    Column("row", Text, nullable=False),
    Index("ix_source_problems_source", "source", "id"),
)

source_files = Table(
    "source_files",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("source", String(100), nullable=False),
    Column("name", String(300), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("accepted", Integer, nullable=False),
    Column("refused", Integer, nullable=False),
    Index("ix_source_files_hash", "source", "name", "sha256", unique=True),
)
