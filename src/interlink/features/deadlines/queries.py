"""SQL of deadline escalation, named once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, insert, or_, select, update

from interlink.features.deadlines.tables import deadline_reports
from interlink.model import Status
from interlink.store.schema import deliveries

UNDELIVERED = (Status.PENDING, Status.IN_FLIGHT, Status.HELD, Status.DEAD)


def deadline_candidates(conn: Connection, flow: str, now: datetime, until: datetime) -> list[Any]:
    """Undelivered deliveries of ``flow`` with a deadline before ``until`` that still have
    something to report: never reported, or reported at risk and now past their deadline."""
    r = deadline_reports
    query = (
        select(
            deliveries.c.id,
            deliveries.c.document_id,
            deliveries.c.key,
            deliveries.c.deadline,
            deliveries.c.status,
            deliveries.c.reason,
            deliveries.c.failures,
            deliveries.c.last_error,
            r.c.at_risk_at,
            r.c.missed_at,
        )
        .select_from(deliveries.outerjoin(r, r.c.delivery_id == deliveries.c.id))
        .where(
            deliveries.c.flow == flow,
            deliveries.c.status.in_([str(s) for s in UNDELIVERED]),
            deliveries.c.deadline <= until,
            or_(
                r.c.delivery_id.is_(None),
                and_(r.c.missed_at.is_(None), deliveries.c.deadline <= now),
            ),
        )
        .order_by(deliveries.c.deadline, deliveries.c.id)
    )
    return list(conn.execute(query))


def save_reports(
    conn: Connection,
    now: datetime,
    at_risk: Sequence[int],
    missed_new: Sequence[int],
    missed_known: Sequence[int],
) -> None:
    """Remember what was reported: new at-risk rows, new missed rows, and missed on rows that
    were at risk before."""
    rows = [{"delivery_id": i, "at_risk_at": now, "missed_at": None} for i in at_risk]
    rows += [{"delivery_id": i, "at_risk_at": None, "missed_at": now} for i in missed_new]
    if rows:
        conn.execute(insert(deadline_reports), rows)
    for start in range(0, len(missed_known), 500):
        chunk = list(missed_known[start : start + 500])
        conn.execute(
            update(deadline_reports)
            .where(deadline_reports.c.delivery_id.in_(chunk))
            .values(missed_at=now)
        )
