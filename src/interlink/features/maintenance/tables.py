"""Tables of maintenance windows, on the shared metadata.

Created by migration ``0002``. Each notification a window sends has its own timestamp column,
set in the same transaction as the event it stands for, so every event is written once.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from interlink.store.schema import BigId, UTCDateTime, metadata

maintenance_windows = Table(
    "maintenance_windows",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("system", String(100), nullable=False),
    Column("start_at", UTCDateTime, nullable=False),
    Column("end_at", UTCDateTime, nullable=False),
    Column("reason", Text, nullable=False),
    Column("short_notice", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("cancelled_at", UTCDateTime),
    Column("cancelled_by", String(100)),
    Column("reminded_at", UTCDateTime),
    Column("started_at", UTCDateTime),
    Column("ended_at", UTCDateTime),
    Column("drained_at", UTCDateTime),
    Column("held_count", Integer),
    Index("ix_maintenance_windows_system", "system", "end_at"),
)

# The deliveries a window held, recorded when it ends, for its drain report.
maintenance_held = Table(
    "maintenance_held",
    metadata,
    Column("window_id", BigInteger, primary_key=True),
    Column("delivery_id", BigInteger, primary_key=True),
)
