"""Tables of reconciliation: one row per run, one row per difference found."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, Integer, String, Table, Text

from interlink.store.schema import BigId, UTCDateTime, metadata

reconcile_runs = Table(
    "reconcile_runs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("flow", String(100), nullable=False),
    Column("since", UTCDateTime),
    Column("until", UTCDateTime),
    Column("source", String(300), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("counts", Text, nullable=False),
    Column("totals", Text, nullable=False),
    Column("complete", Boolean, nullable=False),
    Column("problems", Text, nullable=False),
    Column("actor", String(100), nullable=False),
    Index("ix_reconcile_runs_flow", "flow", "id"),
)

reconcile_items = Table(
    "reconcile_items",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("run_id", Integer, nullable=False),
    Column("category", String(24), nullable=False),
    Column("key", String(200), nullable=False),
    Column("revision", Integer),
    Column("ours_amount", String(60)),
    Column("theirs_amount", String(60)),
    Column("ours_status", String(100)),
    Column("theirs_status", String(100)),
    Column("line", Integer),
    Column("delivery_id", Integer),
    Column("delivery_status", String(12)),
    Column("detail", Text, nullable=False),
    Index("ix_reconcile_items_run", "run_id", "category", "id"),
)
