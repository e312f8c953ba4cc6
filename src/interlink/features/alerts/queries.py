"""SQL of alerting, named once: the alerter's cursor over ``events``, and the alert records."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from interlink.features.alerts.tables import alert_cursor, alerts
from interlink.store.schema import deliveries, events


def load_cursor(conn: Connection, name: str) -> tuple[int, str] | None:
    row = conn.execute(
        select(alert_cursor.c.last_id, alert_cursor.c.state).where(alert_cursor.c.name == name)
    ).first()
    return (int(row.last_id), str(row.state)) if row is not None else None


def save_cursor(
    conn: Connection, name: str, expected: int | None, last_id: int, state: str, now: datetime
) -> bool:
    """Move the cursor from ``expected`` to ``last_id``; False if another process moved it."""
    if expected is None:
        conn.execute(
            insert(alert_cursor).values(name=name, last_id=last_id, state=state, updated_at=now)
        )
        return True
    done = conn.execute(
        update(alert_cursor)
        .where(alert_cursor.c.name == name, alert_cursor.c.last_id == expected)
        .values(last_id=last_id, state=state, updated_at=now)
    )
    return done.rowcount == 1


def events_after(conn: Connection, after_id: int, limit: int) -> list[Any]:
    return list(
        conn.execute(
            select(events).where(events.c.id > after_id).order_by(events.c.id).limit(limit)
        )
    )


def last_event_id(conn: Connection) -> int:
    return int(
        conn.execute(select(events.c.id).order_by(events.c.id.desc()).limit(1)).scalar() or 0
    )


def delivery_refs(conn: Connection, ids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """Delivery id -> (business key, document id), for the examples in a message."""
    if not ids:
        return {}
    rows = conn.execute(
        select(deliveries.c.id, deliveries.c.key, deliveries.c.document_id).where(
            deliveries.c.id.in_(list(ids))
        )
    )
    return {int(r.id): (r.key, r.document_id) for r in rows}


def insert_alerts(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(alerts), rows)


def claim_due(conn: Connection, now: datetime, lease_until: datetime, limit: int) -> list[Any]:
    """Pending alerts whose time has come, leased so that no other process sends them too."""
    rows = list(
        conn.execute(
            select(alerts)
            .where(alerts.c.status == "pending", alerts.c.next_at <= now)
            .order_by(alerts.c.id)
            .limit(limit)
        )
    )
    if rows:
        conn.execute(
            update(alerts).where(alerts.c.id.in_([r.id for r in rows])).values(next_at=lease_until)
        )
    return rows


def finish(conn: Connection, results: list[dict[str, Any]]) -> None:
    for r in results:
        conn.execute(
            update(alerts)
            .where(alerts.c.id == r["id"])
            .values(
                status=r["status"],
                attempts=r["attempts"],
                next_at=r["next_at"],
                sent_at=r["sent_at"],
                error=r["error"],
            )
        )


def list_alerts(
    conn: Connection,
    *,
    status: str | None = None,
    kind: str | None = None,
    flow: str | None = None,
    system: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[Any]:
    query = select(alerts).order_by(alerts.c.id.desc()).limit(limit)
    if status:
        query = query.where(alerts.c.status == status)
    if kind:
        query = query.where(alerts.c.kind == kind)
    if flow:
        query = query.where(alerts.c.flow == flow)
    if system:
        query = query.where(alerts.c.system == system)
    if since:
        query = query.where(alerts.c.at >= since)
    return list(conn.execute(query))
