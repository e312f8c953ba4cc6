"""Tables of alerting: every alert message sent (or tried), and where the alerter is in the
``events`` table. Created by migration ``0003``."""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, String, Table, Text

from interlink.store.schema import BigId, UTCDateTime, metadata

alerts = Table(
    "alerts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("rule", String(40), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("system", String(100)),
    Column("flow", String(100)),
    Column("recipients", Text, nullable=False),  # JSON list of addresses
    Column("channel", String(20), nullable=False),  # email | apprise | none
    Column("target", Text, nullable=False),  # the Apprise URL; "" for mail (see recipients)
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("count", Integer, nullable=False),  # events this message stands for
    Column("status", String(12), nullable=False),  # pending | sent | failed | unrouted
    Column("attempts", Integer, nullable=False),
    Column("next_at", UTCDateTime),
    Column("sent_at", UTCDateTime),
    Column("error", Text),
    Index("ix_alerts_due", "status", "next_at"),
    Index("ix_alerts_at", "at"),
)

alert_cursor = Table(
    "alert_cursor",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("last_id", BigId, nullable=False),
    # The aggregation buckets (JSON), saved with the cursor so a restart keeps what was folded.
    Column("state", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
