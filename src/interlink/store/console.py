"""Named queries the console needs beyond the core's: attempts per hour by outcome and
deliveries completed since a time, read from the attempts table.

``attempts`` has no index on ``started_at``; its ids grow with time, so the first id of a
period is found by bisecting on the primary key (about twenty point reads), and only the
rows after it are scanned. Attempts are recorded shortly after they start, so the bisection
starts ``SLACK`` early and the exact time is filtered on the rows found.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from interlink.store.queries.deliveries import unindexed
from interlink.store.schema import attempts, deliveries

SLACK = timedelta(hours=1)
DELIVERED_OUTCOMES = ("delivered", "duplicate")


def first_attempt_id_since(conn: Connection, at: datetime) -> int | None:
    """The smallest attempt id whose ``started_at`` is at or after ``at - SLACK`` (attempt
    times are taken as growing with id), or None when no attempt is that recent."""
    # two statements: SQLite answers a lone min() or max() from the key, not both at once
    low = conn.scalar(select(func.min(attempts.c.id)))
    high = conn.scalar(select(func.max(attempts.c.id)))
    if low is None or high is None:
        return None
    floor = at - SLACK

    def started(at_or_after: int) -> tuple[int, datetime] | None:
        row = conn.execute(
            select(attempts.c.id, attempts.c.started_at)
            .where(attempts.c.id >= at_or_after)
            .order_by(attempts.c.id)
            .limit(1)
        ).first()
        return (row[0], row[1]) if row is not None else None

    last = started(high)
    if last is None or last[1] < floor:
        return None
    while low < high:
        middle = (low + high) // 2
        found = started(middle)
        if found is None or found[1] >= floor:
            high = middle
        else:
            low = found[0] + 1
    return low


def _hour(conn: Connection) -> Any:
    if conn.dialect.name == "postgresql":
        return func.date_trunc("hour", attempts.c.started_at)
    return func.strftime("%Y-%m-%dT%H:00:00", attempts.c.started_at)


def hourly_outcomes(conn: Connection, flow: str, since: datetime) -> dict[datetime, dict[str, int]]:
    """{hour (UTC): {outcome: attempts}} for ``flow``'s attempts started at or after ``since``."""
    first = first_attempt_id_since(conn, since)
    if first is None:
        return {}
    hour = _hour(conn)
    rows = conn.execute(
        select(hour, attempts.c.outcome, func.count())
        .select_from(attempts.join(deliveries, deliveries.c.id == attempts.c.delivery_id))
        .where(
            attempts.c.id >= first,
            attempts.c.started_at >= since,
            unindexed(conn, deliveries.c.flow) == flow,
        )
        .group_by(hour, attempts.c.outcome)
    )
    found: dict[datetime, dict[str, int]] = defaultdict(dict)
    for bucket, outcome, count in rows:
        if isinstance(bucket, str):
            bucket = datetime.fromisoformat(bucket)
        bucket = bucket.replace(tzinfo=UTC) if bucket.tzinfo is None else bucket.astimezone(UTC)
        found[bucket][outcome] = found[bucket].get(outcome, 0) + count
    return dict(found)


def delivered_since(conn: Connection, since: datetime) -> dict[str, int]:
    """{flow: deliveries completed (delivered or duplicate) by attempts since ``since``}."""
    first = first_attempt_id_since(conn, since)
    if first is None:
        return {}
    rows = conn.execute(
        select(deliveries.c.flow, func.count())
        .select_from(attempts.join(deliveries, deliveries.c.id == attempts.c.delivery_id))
        .where(
            attempts.c.id >= first,
            attempts.c.started_at >= since,
            attempts.c.outcome.in_(DELIVERED_OUTCOMES),
        )
        .group_by(deliveries.c.flow)
    )
    return {flow: count for flow, count in rows}
