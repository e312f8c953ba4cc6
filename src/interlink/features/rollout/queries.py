"""SQL of rollout stages, named once."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select

from interlink.features.rollout.tables import rollout_stages
from interlink.model import HoldReason, Status
from interlink.store.schema import deliveries, documents, events

SKIPPED = "deliveries_skipped"


def stages(conn: Connection) -> dict[str, Any]:
    """flow → its run-time stage row (stage, since, actor, note)."""
    return {row.flow: row for row in conn.execute(select(rollout_stages))}


def set_stage(
    conn: Connection, flow: str, stage: str, since: datetime, actor: str, note: str
) -> None:
    conn.execute(delete(rollout_stages).where(rollout_stages.c.flow == flow))
    conn.execute(
        insert(rollout_stages).values(flow=flow, stage=stage, since=since, actor=actor, note=note)
    )


def counts(conn: Connection, flow: str, since: datetime | None) -> list[Any]:
    """(status, reason, count, oldest created_at) of ``flow``'s deliveries created since."""
    query = select(
        deliveries.c.status,
        deliveries.c.reason,
        func.count(),
        func.min(deliveries.c.created_at),
    ).where(deliveries.c.flow == flow)
    if since is not None:
        query = query.where(deliveries.c.created_at >= since)
    return list(conn.execute(query.group_by(deliveries.c.status, deliveries.c.reason)))


def held_outside(conn: Connection, flow: str) -> list[Any]:
    """``flow``'s deliveries held ``rollout``, with their documents' key, payload and
    scenario, in key order (each key's revisions in order)."""
    return list(
        conn.execute(
            select(
                deliveries.c.id,
                deliveries.c.flow,
                deliveries.c.system,
                deliveries.c.key,
                documents.c.payload,
                documents.c.scenario,
            )
            .join(documents, documents.c.id == deliveries.c.document_id)
            .where(
                deliveries.c.flow == flow,
                deliveries.c.status == Status.HELD,
                deliveries.c.reason == HoldReason.ROLLOUT,
            )
            .order_by(deliveries.c.key, deliveries.c.revision)
        )
    )


def flows_holding_outside(conn: Connection, flows: list[str]) -> list[str]:
    """Of ``flows``, those with a delivery held ``rollout`` (read from the backlog index)."""
    rows = conn.execute(
        select(deliveries.c.flow)
        .where(
            deliveries.c.status == Status.HELD,
            deliveries.c.flow.in_(flows),
            deliveries.c.reason == HoldReason.ROLLOUT,
        )
        .distinct()
    )
    return sorted(row[0] for row in rows)


def skipped(conn: Connection, flow: str, since: datetime | None) -> int:
    """Documents skipped on ``flow`` outside the pilot since ``since`` (from the events)."""
    query = select(events.c.detail).where(events.c.kind == SKIPPED, events.c.flow == flow)
    if since is not None:
        query = query.where(events.c.at >= since)
    total = 0
    for (detail,) in conn.execute(query):
        try:
            total += int(json.loads(detail).get("count", 0))
        except (ValueError, TypeError, AttributeError):
            continue
    return total
