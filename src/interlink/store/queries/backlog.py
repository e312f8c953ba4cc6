"""The backlog as the ``/metrics`` gauges read it: one grouped query over the deliveries that
are not delivered, and the circuits.

Delivered rows are most of the table and never read here, and the rest are counted from
``ix_deliveries_backlog`` (status, flow, reason, created_at) alone: with a million held, the
query took 2.5 s on SQLite through ``ix_deliveries_due`` and 0.4 s with it
(docs/benchmarks.md, "Backlog gauges").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, case, func, select

from interlink.model import Status
from interlink.store.schema import circuits, deliveries

UNDELIVERED = (Status.PENDING, Status.IN_FLIGHT, Status.HELD, Status.DEAD)


@dataclass(frozen=True, slots=True)
class BacklogRow:
    """Deliveries of one flow in one status (and reason, for held and dead)."""

    flow: str
    status: str
    reason: str | None
    count: int
    oldest_pending: datetime | None  # created_at of the oldest, for pending rows only


def backlog_statement() -> Select[Any]:
    """Counts per (flow, status, reason) of every undelivered delivery, with the oldest pending
    delivery's creation time."""
    oldest = func.min(case((deliveries.c.status == Status.PENDING, deliveries.c.created_at)))
    return (
        select(
            deliveries.c.flow,
            deliveries.c.status,
            deliveries.c.reason,
            func.count().label("n"),
            oldest.label("oldest"),
        )
        .where(deliveries.c.status.in_(UNDELIVERED))
        # In the index's order (status, flow, reason), so no sort is needed to group.
        .group_by(deliveries.c.status, deliveries.c.flow, deliveries.c.reason)
    )


def backlog(conn: Connection) -> list[BacklogRow]:
    rows = conn.execute(backlog_statement())
    return [BacklogRow(r.flow, r.status, r.reason, r.n, r.oldest) for r in rows]


def circuit_states(conn: Connection) -> dict[str, str]:
    """system → its circuit's state, for systems that have a circuit row."""
    return {
        row.system: row.state for row in conn.execute(select(circuits.c.system, circuits.c.state))
    }
