"""The table of deadline escalation, on the shared metadata (created by migration ``0002``)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Table

from interlink.store.schema import UTCDateTime, metadata

# Which deliveries were already reported at risk or missed, so none is reported twice.
deadline_reports = Table(
    "deadline_reports",
    metadata,
    Column("delivery_id", BigInteger, primary_key=True),
    Column("at_risk_at", UTCDateTime),
    Column("missed_at", UTCDateTime),
)
