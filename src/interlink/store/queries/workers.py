"""The worker registry: heartbeats, published shares, retirement."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, func, insert, or_, select, update

from interlink.store.schema import workers


@dataclass(frozen=True, slots=True)
class Registered:
    """A worker in the registry: its published shares (None: it publishes none), when it
    last gave part of them back, and whether it counts as live."""

    id: str
    shares: dict[str, float] | None
    released_at: datetime | None
    live: bool


# Serialises the workers' share changes on PostgreSQL (SQLite's writer lock already does).
_SHARES_LOCK = 7134824


def heartbeat(
    conn: Connection, worker_id: str, now: datetime, live_within: float, reset: bool
) -> None:
    """Record that ``worker_id`` is alive; ``reset``: it holds no shares (a new worker, or
    one whose heartbeat lapsed and whose shares the others may have taken)."""
    values: dict[str, Any] = {"heartbeat_at": now, "retired_at": None}
    if reset:
        values["shares"] = "{}"
    updated = conn.execute(
        update(workers).where(workers.c.id == worker_id).values(**values)
    ).rowcount
    if not updated:
        row = {**values, "id": worker_id, "started_at": now, "shares": "{}"}
        conn.execute(insert(workers).values(row))
    cutoff = now - timedelta(seconds=live_within)
    conn.execute(delete(workers).where(workers.c.heartbeat_at < cutoff - timedelta(hours=1)))


def registry(
    conn: Connection, now: datetime, live_within: float, settle: float
) -> list[Registered]:
    """The live workers, and those that gave shares back within ``settle`` seconds. On
    PostgreSQL, first takes the lock that serialises share changes until the commit."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(_SHARES_LOCK)))
    cutoff = now - timedelta(seconds=live_within)
    live = (workers.c.heartbeat_at >= cutoff) & workers.c.retired_at.is_(None)
    rows = conn.execute(
        select(workers.c.id, workers.c.shares, workers.c.released_at, live.label("live")).where(
            or_(live, workers.c.released_at >= now - timedelta(seconds=settle))
        )
    )
    return [
        Registered(
            id=row.id,
            shares=None if row.shares is None else dict(json.loads(row.shares)),
            released_at=row.released_at,
            live=bool(row.live),
        )
        for row in rows
    ]


def publish_shares(
    conn: Connection, worker_id: str, shares: Mapping[str, float], released_at: datetime | None
) -> None:
    """Publish ``worker_id``'s shares; ``released_at`` when some of them shrank."""
    values: dict[str, Any] = {"shares": json.dumps(dict(shares), sort_keys=True)}
    if released_at is not None:
        values["released_at"] = released_at
    conn.execute(update(workers).where(workers.c.id == worker_id).values(**values))


def retire_worker(conn: Connection, worker_id: str, now: datetime) -> None:
    """A worker stopped cleanly: it holds nothing now, and counts no more among the live.
    The row stays a while, so that the others take its shares only once they settled."""
    conn.execute(
        update(workers)
        .where(workers.c.id == worker_id)
        .values(shares="{}", released_at=now, retired_at=now)
    )
