"""The record of drill runs (in the hub's own store, not the drill's temporary one), which
readiness reads for "an outage drill passed recently"."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, String, Table, Text

from interlink.store.schema import BigId, UTCDateTime, metadata

drill_runs = Table(
    "drill_runs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("file", Text, nullable=False),
    Column("started", UTCDateTime, nullable=False),
    Column("finished", UTCDateTime, nullable=False),
    Column("passed", Boolean, nullable=False),
    # Comma-framed lists (",a,b,") so that a LIKE finds one name exactly.
    Column("flows", Text, nullable=False),
    Column("outages", Text, nullable=False),
    Column("report", Text, nullable=False),
    Index("ix_drill_runs_finished", "finished"),
)
