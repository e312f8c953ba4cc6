"""SQL of the incident register, named once."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, exists, insert, or_, select, update

from interlink.features.incidents.tables import incident_attachments, incident_entries, incidents

RESOLVED = "resolved"


def insert_incident(conn: Connection, values: dict[str, Any]) -> int:
    result = conn.execute(insert(incidents).values(**values))
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def get_incident(conn: Connection, incident_id: int) -> Any:
    return conn.execute(select(incidents).where(incidents.c.id == incident_id)).first()


def update_incident(conn: Connection, incident_id: int, values: dict[str, Any]) -> None:
    conn.execute(update(incidents).where(incidents.c.id == incident_id).values(**values))


def open_by_source(conn: Connection, source_key: str) -> Any:
    """The unresolved incident opened by alerts for this (rule, system, flow), if any."""
    return conn.execute(
        select(incidents)
        .where(incidents.c.source_key == source_key, incidents.c.status != RESOLVED)
        .order_by(incidents.c.id.desc())
        .limit(1)
    ).first()


def add_entry(
    conn: Connection, incident_id: int, at: datetime, actor: str, kind: str, text: str
) -> None:
    conn.execute(
        insert(incident_entries).values(
            incident_id=incident_id, at=at, actor=actor, kind=kind, text=text
        )
    )


def entries(conn: Connection, incident_id: int) -> list[Any]:
    return list(
        conn.execute(
            select(incident_entries)
            .where(incident_entries.c.incident_id == incident_id)
            .order_by(incident_entries.c.id)
        )
    )


def add_attachment(conn: Connection, values: dict[str, Any]) -> int:
    result = conn.execute(insert(incident_attachments).values(**values))
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def attachments(conn: Connection, incident_id: int) -> list[Any]:
    return list(
        conn.execute(
            select(incident_attachments)
            .where(incident_attachments.c.incident_id == incident_id)
            .order_by(incident_attachments.c.id)
        )
    )


def get_attachment(conn: Connection, incident_id: int, attachment_id: int) -> Any:
    return conn.execute(
        select(incident_attachments).where(
            incident_attachments.c.incident_id == incident_id,
            incident_attachments.c.id == attachment_id,
        )
    ).first()


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search(
    conn: Connection,
    *,
    status: str | None = None,
    system: str | None = None,
    flow: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    text: str | None = None,
    limit: int | None = 100,
) -> list[Any]:
    """Incidents, newest first. ``since``/``until`` bound the registration time; ``text`` is
    looked for in the title, description, resolution and timeline."""
    query = select(incidents).order_by(incidents.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    if status:
        query = query.where(incidents.c.status == status)
    if system:
        query = query.where(incidents.c.systems.like(_like(json.dumps(system)), escape="\\"))
    if flow:
        query = query.where(incidents.c.flows.like(_like(json.dumps(flow)), escape="\\"))
    if since:
        query = query.where(incidents.c.registered_at >= since)
    if until:
        query = query.where(incidents.c.registered_at < until)
    if text:
        pattern = _like(text.lower())
        in_timeline = exists().where(
            incident_entries.c.incident_id == incidents.c.id,
            incident_entries.c.text.ilike(pattern, escape="\\"),
        )
        query = query.where(
            or_(
                incidents.c.title.ilike(pattern, escape="\\"),
                incidents.c.description.ilike(pattern, escape="\\"),
                incidents.c.resolution.ilike(pattern, escape="\\"),
                in_timeline,
            )
        )
    return list(conn.execute(query))
