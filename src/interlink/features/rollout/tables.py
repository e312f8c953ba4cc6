"""The run-time stage of each rolled-out flow, on the shared metadata (migration ``0012``).

A flow without a row is at the stage its topology's ``rollout:`` block names.
"""

from __future__ import annotations

from sqlalchemy import Column, String, Table, Text

from interlink.store.schema import UTCDateTime, metadata

rollout_stages = Table(
    "rollout_stages",
    metadata,
    Column("flow", String(100), primary_key=True),
    Column("stage", String(8), nullable=False),
    Column("since", UTCDateTime, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("note", Text, nullable=False),
)
