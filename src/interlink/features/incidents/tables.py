"""Tables of the incident register: incidents, their timeline, their attachments. Created by
migration ``0003``."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Table, Text

from interlink.store.schema import BigId, UTCDateTime, metadata

incidents = Table(
    "incidents",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("title", String(300), nullable=False),
    Column("description", Text, nullable=False),
    Column("category", String(60), nullable=False),
    Column("severity", String(10), nullable=False),
    Column("status", String(14), nullable=False),
    Column("registered_at", UTCDateTime, nullable=False),
    Column("registered_by", String(100), nullable=False),
    Column("assignee", String(100)),
    Column("systems", Text, nullable=False),  # JSON list
    Column("flows", Text, nullable=False),  # JSON list
    Column("documents", Text, nullable=False),  # JSON list of document ids
    Column("resolution", Text),
    Column("resolved_at", UTCDateTime),
    Column("resolved_by", String(100)),
    Column("source_key", String(300)),  # (rule, system, flow) of an incident opened by alerts
    Column("occurrences", Integer, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_incidents_status", "status"),
    Index("ix_incidents_source", "source_key", "status"),
)

incident_entries = Table(
    "incident_entries",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("incident_id", BigId, ForeignKey("incidents.id"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("kind", String(10), nullable=False),  # comment | status | assign | alert
    Column("text", Text, nullable=False),
    Index("ix_incident_entries_incident", "incident_id"),
)

incident_attachments = Table(
    "incident_attachments",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("incident_id", BigId, ForeignKey("incidents.id"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("filename", String(255), nullable=False),
    Column("content_type", String(60), nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("stored_as", String(300), nullable=False),  # path under the data directory
    Index("ix_incident_attachments_incident", "incident_id"),
)
