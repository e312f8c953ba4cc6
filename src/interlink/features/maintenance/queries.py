"""SQL of maintenance windows, named once.

Functions take a SQLAlchemy ``Connection`` and plain values and return rows, counts or
:class:`~interlink.features.maintenance.windows.Window` objects.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, func, insert, literal, or_, select, update

from interlink.features.maintenance.tables import maintenance_held, maintenance_windows
from interlink.features.maintenance.windows import Window
from interlink.model import HoldReason, Status
from interlink.store.schema import deliveries

W = maintenance_windows
UNDELIVERED = (Status.PENDING, Status.IN_FLIGHT, Status.HELD, Status.DEAD)

# -- windows ----------------------------------------------------------------------------------


def _window(row: Any) -> Window:
    return Window(
        id=row.id,
        system=row.system,
        start=row.start_at,
        end=row.end_at,
        reason=row.reason,
        short_notice=bool(row.short_notice),
        created_at=row.created_at,
        created_by=row.created_by,
        cancelled_at=row.cancelled_at,
        reminded_at=row.reminded_at,
        started_at=row.started_at,
        ended_at=row.ended_at,
        drained_at=row.drained_at,
        held_count=row.held_count,
    )


def insert_window(conn: Connection, values: dict[str, Any]) -> int:
    result = conn.execute(insert(W).values(**values))
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def get_window(conn: Connection, window_id: int) -> Window | None:
    row = conn.execute(select(W).where(W.c.id == window_id)).first()
    return _window(row) if row is not None else None


def list_windows(conn: Connection, since: datetime | None = None) -> list[Window]:
    """Windows ending after ``since`` (all of them without it), by start."""
    query = select(W)
    if since is not None:
        query = query.where(W.c.end_at > since)
    return [_window(r) for r in conn.execute(query.order_by(W.c.start_at, W.c.id))]


def live_windows(conn: Connection) -> list[Window]:
    """Windows the housekeeper still has work for: not drained, and not cancelled before
    they started."""
    query = select(W).where(
        W.c.drained_at.is_(None), or_(W.c.cancelled_at.is_(None), W.c.started_at.is_not(None))
    )
    return [_window(r) for r in conn.execute(query.order_by(W.c.start_at))]


def overlapping(conn: Connection, system: str, start: datetime, end: datetime) -> list[Window]:
    query = select(W).where(
        W.c.system == system,
        W.c.cancelled_at.is_(None),
        W.c.start_at < end,
        W.c.end_at > start,
    )
    return [_window(r) for r in conn.execute(query.order_by(W.c.start_at))]


def cancel_window(conn: Connection, window_id: int, now: datetime, actor: str) -> int:
    return (
        conn.execute(
            update(W)
            .where(W.c.id == window_id, W.c.cancelled_at.is_(None))
            .values(cancelled_at=now, cancelled_by=actor)
        ).rowcount
        or 0
    )


def mark(conn: Connection, window_id: int, column: str, now: datetime, **extra: Any) -> bool:
    """Set a window's ``column`` (reminded_at, started_at, ...) once: False if it was set."""
    col = W.c[column]
    done = conn.execute(
        update(W).where(W.c.id == window_id, col.is_(None)).values({column: now, **extra})
    ).rowcount
    return bool(done)


# -- holding and draining ---------------------------------------------------------------------


def record_held(conn: Connection, window_id: int, system: str) -> int:
    """Remember the deliveries held by the window at its end, for the drain report."""
    chosen = select(literal(window_id), deliveries.c.id).where(
        deliveries.c.system == system,
        deliveries.c.status == Status.HELD,
        deliveries.c.reason == HoldReason.MAINTENANCE,
    )
    conn.execute(insert(maintenance_held).from_select(["window_id", "delivery_id"], chosen))
    # rowcount of INSERT ... SELECT is not reported by every driver: count what is there.
    counted = conn.execute(
        select(func.count()).where(maintenance_held.c.window_id == window_id)
    ).scalar()
    return int(counted or 0)


def held_bounds(conn: Connection, window_id: int) -> tuple[int | None, int | None]:
    """Lowest and highest delivery id the window held (None, None when it held nothing)."""
    row = conn.execute(
        select(
            func.min(maintenance_held.c.delivery_id), func.max(maintenance_held.c.delivery_id)
        ).where(maintenance_held.c.window_id == window_id)
    ).one()
    return row[0], row[1]


def any_waiting(conn: Connection, system: str, low: int, high: int) -> bool:
    """Whether a delivery to ``system`` with an id in [low, high] is pending or in flight: a
    cheap, conservative test (on the system/status index) that a window's drain is not over."""
    row = conn.execute(
        select(deliveries.c.id)
        .where(
            deliveries.c.system == system,
            deliveries.c.status.in_([str(Status.PENDING), str(Status.IN_FLIGHT)]),
            deliveries.c.id >= low,
            deliveries.c.id <= high,
        )
        .limit(1)
    ).first()
    return row is not None


def drain_state(conn: Connection, window_id: int) -> tuple[list[Any], datetime | None]:
    """(status, reason, count) over the window's held deliveries, and when the last of them
    was delivered."""
    joined = maintenance_held.join(deliveries, deliveries.c.id == maintenance_held.c.delivery_id)
    where = maintenance_held.c.window_id == window_id
    counts = list(
        conn.execute(
            select(deliveries.c.status, deliveries.c.reason, func.count())
            .select_from(joined)
            .where(where)
            .group_by(deliveries.c.status, deliveries.c.reason)
        )
    )
    last = conn.execute(
        select(func.max(deliveries.c.delivered_at))
        .select_from(joined)
        .where(where, deliveries.c.status == Status.DELIVERED)
    ).scalar()
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    return counts, last


def stuck_sample(conn: Connection, window_id: int, limit: int = 20) -> list[Any]:
    joined = maintenance_held.join(deliveries, deliveries.c.id == maintenance_held.c.delivery_id)
    return list(
        conn.execute(
            select(
                deliveries.c.id,
                deliveries.c.document_id,
                deliveries.c.flow,
                deliveries.c.key,
                deliveries.c.status,
                deliveries.c.reason,
                deliveries.c.last_error,
            )
            .select_from(joined)
            .where(
                maintenance_held.c.window_id == window_id,
                deliveries.c.status != Status.DELIVERED,
            )
            .order_by(deliveries.c.id)
            .limit(limit)
        )
    )


# -- observed traffic and deadlines inside a window ---------------------------------------------


def traffic_per_hour(
    conn: Connection, system: str, since: datetime, until: datetime
) -> list[tuple[str, datetime, int]]:
    """Deliveries to ``system`` created in [since, until): (flow, UTC hour, count)."""
    created = deliveries.c.created_at
    if conn.dialect.name == "postgresql":
        bucket: Any = func.date_trunc("hour", created)
    else:
        bucket = func.strftime("%Y-%m-%d %H:00:00", created)
    rows = conn.execute(
        select(deliveries.c.flow, bucket.label("hour"), func.count())
        .where(deliveries.c.system == system, created >= since, created < until)
        .group_by(deliveries.c.flow, bucket)
    )
    result: list[tuple[str, datetime, int]] = []
    for flow, hour, count in rows:
        when = hour if isinstance(hour, datetime) else datetime.fromisoformat(str(hour))
        result.append((flow, when if when.tzinfo else when.replace(tzinfo=UTC), int(count)))
    return result


def set_held_count(conn: Connection, window_id: int, count: int) -> None:
    conn.execute(update(W).where(W.c.id == window_id).values(held_count=count))


def deadlines_within(
    conn: Connection, system: str, start: datetime, end: datetime, limit: int = 20
) -> tuple[list[Any], int]:
    """Undelivered deliveries to ``system`` whose deadline falls in [start, end): the first
    ``limit`` by deadline, and how many there are."""
    where = and_(
        deliveries.c.system == system,
        deliveries.c.status != Status.DELIVERED,
        deliveries.c.deadline >= start,
        deliveries.c.deadline < end,
    )
    total = conn.execute(select(func.count()).where(where)).scalar() or 0
    rows = list(
        conn.execute(
            select(
                deliveries.c.id,
                deliveries.c.document_id,
                deliveries.c.flow,
                deliveries.c.key,
                deliveries.c.deadline,
            )
            .where(where)
            .order_by(deliveries.c.deadline, deliveries.c.id)
            .limit(limit)
        )
    )
    return rows, int(total)
