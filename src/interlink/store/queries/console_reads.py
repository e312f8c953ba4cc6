"""Reads the console's on-duty answers need: how many deliveries a filter matches, and the
last failure a downstream's deliveries met (why it is down). Read-only; no rule lives here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from interlink.model import Status
from interlink.store.console import DELIVERED_OUTCOMES, first_attempt_id_since
from interlink.store.queries.deliveries import unindexed
from interlink.store.schema import attempts, deliveries


def count_matching(conn: Connection, conditions: list[Any]) -> int:
    """How many deliveries match ``conditions`` (a ``delivery_filter``)."""
    return int(conn.scalar(select(func.count()).select_from(deliveries).where(*conditions)) or 0)


# What waits on a flow; delivered deliveries (nearly all of a flow's, in time) wait for nothing.
WAITING = (Status.PENDING, Status.IN_FLIGHT, Status.HELD, Status.DEAD)


def waiting_counts(conn: Connection, flow: str) -> list[Any]:
    """(status, reason, count) of one flow's deliveries that are not delivered. Reads the
    (status, flow) ranges of the due index, so its cost follows what waits, not the flow's
    size: a flow of a million delivered deliveries costs nothing."""
    return list(
        conn.execute(
            select(deliveries.c.status, deliveries.c.reason, func.count())
            .where(deliveries.c.status.in_(WAITING), deliveries.c.flow == flow)
            .group_by(deliveries.c.status, deliveries.c.reason)
        )
    )


def last_failure(conn: Connection, system: str, since: datetime) -> Any | None:
    """The newest attempt to ``system`` started at or after ``since`` that did not deliver
    (``started_at``, ``outcome``, ``status_code``, ``detail``, ``probe``), or None.

    Bounded like the hourly chart: the scan starts at the first attempt id of ``since`` (see
    :func:`interlink.store.console.first_attempt_id_since`) and walks back from the newest.
    """
    first = first_attempt_id_since(conn, since)
    if first is None:
        return None
    return conn.execute(
        select(
            attempts.c.started_at,
            attempts.c.outcome,
            attempts.c.status_code,
            attempts.c.detail,
            attempts.c.probe,
        )
        .select_from(attempts.join(deliveries, deliveries.c.id == attempts.c.delivery_id))
        .where(
            attempts.c.id >= first,
            attempts.c.started_at >= since,
            attempts.c.outcome.not_in(DELIVERED_OUTCOMES),
            unindexed(conn, deliveries.c.system) == system,
        )
        .order_by(attempts.c.id.desc())
        .limit(1)
    ).first()
