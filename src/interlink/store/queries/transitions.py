"""Deliveries moved between states: holds placed and released, stale holds found, and
revisions waiting behind an undelivered earlier one."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from interlink.model import HoldReason, Status
from interlink.store.queries.batches import chunks, member
from interlink.store.queries.deliveries import with_undelivered_predecessor
from interlink.store.schema import deliveries


def set_state(
    conn: Connection,
    ids: Sequence[int],
    status: str,
    reason: str | None,
    now: datetime,
    reset_failures: bool = False,
    leased_only: bool = False,
) -> int:
    """Move the given deliveries to ``status``/``reason``; pending ones become due now.

    ``leased_only`` touches only deliveries still in flight (giving back unsent leases).
    """
    values: dict[str, Any] = {
        "status": status,
        "reason": reason,
        "updated_at": now,
        "lease_until": None,
        "probe": False,
    }
    if status == Status.PENDING:
        values["next_at"] = now
    if reset_failures:
        values.update(failures=0, first_failure_at=None, last_error=None)
    count = 0
    for chunk in chunks(ids, 500):
        count += (
            conn.execute(
                update(deliveries).where(member(conn, deliveries.c.id, chunk)).values(**values)
            ).rowcount
            or 0
        )
    return count


def move(
    conn: Connection,
    now: datetime,
    *,
    to_status: str,
    to_reason: str | None,
    status: str,
    reasons: Sequence[str | None] | None = None,
    flow: str | None = None,
    system: str | None = None,
) -> int:
    """Move every delivery of a flow or system from one state to another (holds, releases)."""
    conditions = [deliveries.c.status == status]
    if reasons is not None:
        conditions.append(deliveries.c.reason.in_([r for r in reasons if r is not None]))
    if flow is not None:
        conditions.append(deliveries.c.flow == flow)
    if system is not None:
        conditions.append(deliveries.c.system == system)
    values: dict[str, Any] = {"status": to_status, "reason": to_reason, "updated_at": now}
    if to_status == Status.PENDING:
        values.update(next_at=now, failures=0, first_failure_at=None)
    return conn.execute(update(deliveries).where(*conditions).values(**values)).rowcount or 0


def stale_holds(
    conn: Connection,
    open_systems: set[str],
    flow_holds: dict[str, str],
    system_holds: dict[str, str],
) -> list[Any]:
    """Held deliveries whose reason no longer holds: (id, flow, system, reason).

    Holds are placed and released by different processes; when a release commits between
    another process's read and its write (a revision arriving as its predecessor is delivered,
    a document arriving as a circuit closes), the hold is left behind. The engine's sweep
    finds those here and lets them go.
    """
    earlier = deliveries.alias("earlier")
    undelivered_before = (
        select(earlier.c.id)
        .where(
            earlier.c.flow == deliveries.c.flow,
            earlier.c.key == deliveries.c.key,
            earlier.c.revision < deliveries.c.revision,
            earlier.c.status != Status.DELIVERED,
        )
        .exists()
    )
    held = deliveries.c.status == Status.HELD
    cols = (deliveries.c.id, deliveries.c.flow, deliveries.c.system, deliveries.c.reason)
    found = list(
        conn.execute(
            select(*cols).where(
                held, deliveries.c.reason == HoldReason.BLOCKED, ~undelivered_before
            )
        )
    )
    found += conn.execute(
        select(*cols).where(
            held,
            deliveries.c.reason == HoldReason.DOWNSTREAM_DOWN,
            deliveries.c.system.not_in(sorted(open_systems) or [""]),
        )
    ).all()
    found += conn.execute(
        select(*cols).where(
            held,
            deliveries.c.reason.in_([HoldReason.PAUSED, HoldReason.AUTH]),
            deliveries.c.flow.not_in(sorted(flow_holds) or [""]),
        )
    ).all()
    found += conn.execute(
        select(*cols).where(
            held,
            deliveries.c.reason == HoldReason.MAINTENANCE,
            deliveries.c.system.not_in(sorted(system_holds) or [""]),
        )
    ).all()
    return found


def waiting_behind(conn: Connection, pairs: Iterable[tuple[str, str]]) -> set[int]:
    """Deliveries of these (flow, key)s that could go out (pending, or held paused, auth,
    maintenance or down) while an earlier revision of the key is undelivered."""
    candidates: list[int] = []
    waiting = [Status.PENDING, Status.HELD]
    reasons = [
        None,
        HoldReason.PAUSED,
        HoldReason.AUTH,
        HoldReason.MAINTENANCE,
        HoldReason.DOWNSTREAM_DOWN,
    ]
    for flow, key in pairs:
        rows = conn.execute(
            select(deliveries.c.id, deliveries.c.reason).where(
                deliveries.c.flow == flow,
                deliveries.c.key == key,
                deliveries.c.status.in_(waiting),
            )
        )
        candidates.extend(row[0] for row in rows if row[1] in reasons)
    return with_undelivered_predecessor(conn, candidates) if candidates else set()
