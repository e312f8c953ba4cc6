"""Every statement of file exchange, named once: batches, their lines, results read, and the
deliveries' moves that files make (into a file, delivered or dead by a result line)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, case, func, insert, or_, select, update

from interlink.features.file_exchange.tables import file_batches, file_lines, file_results
from interlink.model import DeadReason, HoldReason, Status
from interlink.store.queries.batches import chunks, member
from interlink.store.schema import attempts, deliveries, documents

RECEIPT_LIMIT = 4096  # as much of a result line as an HTTP answer's receipt keeps


def _new_id(result: Any) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _waiting(flow: str) -> list[Any]:
    return [
        deliveries.c.flow == flow,
        deliveries.c.status == Status.HELD,
        deliveries.c.reason == HoldReason.BATCHED,
    ]


def waiting(conn: Connection, flow: str, limit: int | None) -> list[Any]:
    """The flow's deliveries waiting for a file, by key and revision."""
    query = (
        select(
            deliveries.c.id,
            deliveries.c.document_id,
            deliveries.c.key,
            deliveries.c.revision,
        )
        .where(*_waiting(flow))
        .order_by(deliveries.c.key, deliveries.c.revision, deliveries.c.id)
    )
    return list(conn.execute(query.limit(limit) if limit else query))


def count_waiting(conn: Connection, flow: str, ready_by: datetime | None = None) -> int:
    """How many wait; with ``ready_by``, only those that were waiting at that time."""
    conditions = _waiting(flow)
    if ready_by is not None:
        conditions.append(deliveries.c.updated_at <= ready_by)
    return int(conn.execute(select(func.count()).where(*conditions)).scalar_one())


def take(conn: Connection, ids: Sequence[int], now: datetime) -> list[int]:
    """Move waiting deliveries into a file (``held: awaiting_result``); the ids this write
    took (another process's file may have taken some of them first)."""
    taken: list[int] = []
    for chunk in chunks(ids, 500):
        rows = conn.execute(
            update(deliveries)
            .where(
                member(conn, deliveries.c.id, chunk),
                deliveries.c.status == Status.HELD,
                deliveries.c.reason == HoldReason.BATCHED,
            )
            .values(reason=HoldReason.AWAITING_RESULT, updated_at=now)
            .returning(deliveries.c.id)
        )
        taken.extend(int(r[0]) for r in rows)
    return taken


def fail_local(conn: Connection, delivery_id: int, why: str, now: datetime) -> None:
    """A delivery that cannot be written in the file: dead, ours (``local_error``)."""
    conn.execute(
        update(deliveries)
        .where(deliveries.c.id == delivery_id)
        .values(
            status=Status.DEAD,
            reason=DeadReason.LOCAL_ERROR,
            last_error=why,
            updated_at=now,
            lease_until=None,
        )
    )


def next_seq(conn: Connection, system: str, day: str | None) -> int:
    """The next sequence number of a system's files: per day when names carry the date."""
    conditions = [file_batches.c.system == system]
    if day is not None:
        conditions.append(file_batches.c.day == day)
    found = conn.execute(select(func.max(file_batches.c.seq)).where(*conditions)).scalar_one()
    return int(found or 0) + 1


def batch_names(conn: Connection, system: str) -> set[str]:
    """The names of the system's own batch files (not results, wherever they lie)."""
    return {
        r[0]
        for r in conn.execute(select(file_batches.c.name).where(file_batches.c.system == system))
    }


def insert_batch(conn: Connection, values: dict[str, Any], lines: list[dict[str, Any]]) -> int:
    batch_id = _new_id(conn.execute(insert(file_batches).values(**values, tries=0, answered=0)))
    for chunk in chunks(lines, 500):
        conn.execute(insert(file_lines), [{**line, "batch_id": batch_id} for line in chunk])
    return batch_id


def get_batch(conn: Connection, batch_id: int) -> Any | None:
    return conn.execute(select(file_batches).where(file_batches.c.id == batch_id)).first()


def unsent(conn: Connection, flow: str, due_by: datetime | None = None) -> list[Any]:
    """The flow's batches not sent yet (due for another try by ``due_by``), oldest first."""
    conditions = [file_batches.c.flow == flow, file_batches.c.sent_at.is_(None)]
    if due_by is not None:
        conditions.append(
            or_(file_batches.c.next_try_at.is_(None), file_batches.c.next_try_at <= due_by)
        )
    return list(
        conn.execute(
            select(file_batches.c.id, file_batches.c.name)
            .where(*conditions)
            .order_by(file_batches.c.id)
        )
    )


def line_deliveries(conn: Connection, batch_id: int) -> list[int]:
    return [
        int(r[0])
        for r in conn.execute(
            select(file_lines.c.delivery_id).where(file_lines.c.batch_id == batch_id)
        )
    ]


def mark_tried(
    conn: Connection, batch_id: int, now: datetime, error: str, next_try: datetime
) -> None:
    conn.execute(
        update(file_batches)
        .where(file_batches.c.id == batch_id)
        .values(tries=file_batches.c.tries + 1, last_error=error, next_try_at=next_try)
    )


def mark_sent(conn: Connection, batch_id: int, now: datetime, due: datetime | None) -> int:
    """The batch is at the downstream: its bytes go, its deliveries count the attempt."""
    conn.execute(
        update(file_batches)
        .where(file_batches.c.id == batch_id)
        .values(
            tries=file_batches.c.tries + 1,
            sent_at=now,
            next_try_at=None,
            last_error=None,
            content=None,
            result_due_at=due,
        )
    )
    ids = line_deliveries(conn, batch_id)
    moved = 0
    for chunk in chunks(ids, 500):
        moved += (
            conn.execute(
                update(deliveries)
                .where(
                    member(conn, deliveries.c.id, chunk),
                    deliveries.c.status == Status.HELD,
                    deliveries.c.reason == HoldReason.AWAITING_RESULT,
                )
                .values(attempts=deliveries.c.attempts + 1, updated_at=now)
            ).rowcount
            or 0
        )
    return moved


def open_lines(conn: Connection, flows: Sequence[str], ref: str) -> list[Any]:
    """Lines of batches on ``flows`` named ``ref`` with no answer yet, newest first (a file
    whose upload was never confirmed still counts: the downstream answering it has it)."""
    return list(
        conn.execute(
            select(
                file_lines.c.batch_id,
                file_lines.c.line,
                file_lines.c.delivery_id,
                file_batches.c.name,
                file_batches.c.flow,
            )
            .join(file_batches, file_batches.c.id == file_lines.c.batch_id)
            .where(
                file_lines.c.ref == ref,
                file_lines.c.verdict.is_(None),
                file_batches.c.flow.in_(list(flows)),
            )
            .order_by(file_batches.c.id.desc())
        )
    )


def answer_line(
    conn: Connection,
    batch_id: int,
    line: int,
    verdict: str,
    now: datetime,
    result_id: int,
    result_line: int,
) -> None:
    conn.execute(
        update(file_lines)
        .where(file_lines.c.batch_id == batch_id, file_lines.c.line == line)
        .values(verdict=verdict, answered_at=now, result_id=result_id, result_line=result_line)
    )
    conn.execute(
        update(file_batches)
        .where(file_batches.c.id == batch_id)
        .values(answered=file_batches.c.answered + 1)
    )


def settle(
    conn: Connection,
    delivery_id: int,
    *,
    delivered: bool,
    message: str,
    receipt: str,
    detail: str,
    now: datetime,
) -> bool:
    """A delivery waiting for its result: delivered (the line is its receipt) or dead."""
    values: dict[str, Any] = {"updated_at": now, "lease_until": None}
    if delivered:
        values.update(status=Status.DELIVERED, reason=None, delivered_at=now, last_error=None)
    else:
        values.update(status=Status.DEAD, reason=DeadReason.REJECTED, last_error=message)
    changed = conn.execute(
        update(deliveries)
        .where(
            deliveries.c.id == delivery_id,
            deliveries.c.status == Status.HELD,
            deliveries.c.reason == HoldReason.AWAITING_RESULT,
        )
        .values(**values)
    ).rowcount
    if not changed:
        return False
    conn.execute(
        insert(attempts).values(
            delivery_id=delivery_id,
            started_at=now,
            elapsed_ms=0.0,
            status_code=None,
            outcome="delivered" if delivered else "rejected",
            detail=detail,
            response=receipt[:RECEIPT_LIMIT],
            probe=False,
        )
    )
    return True


def keys_of(conn: Connection, ids: Sequence[int]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for chunk in chunks(ids, 500):
        found.extend(
            (r.flow, r.key)
            for r in conn.execute(
                select(deliveries.c.flow, deliveries.c.key).where(
                    member(conn, deliveries.c.id, chunk)
                )
            )
        )
    return found


def result_seen(conn: Connection, system: str, name: str) -> bool:
    return (
        conn.execute(
            select(file_results.c.id).where(
                file_results.c.system == system, file_results.c.name == name
            )
        ).first()
        is not None
    )


def insert_result(conn: Connection, values: dict[str, Any]) -> int:
    return _new_id(conn.execute(insert(file_results).values(**values)))


def finish_result(
    conn: Connection, result_id: int, accepted: int, refused: int, problems: list[Any]
) -> None:
    conn.execute(
        update(file_results)
        .where(file_results.c.id == result_id)
        .values(accepted=accepted, refused=refused, problems=json.dumps(problems))
    )


def overdue(conn: Connection, flow: str, now: datetime) -> list[Any]:
    """Sent batches of ``flow`` whose result is due and not all in, not yet reported."""
    return list(
        conn.execute(
            select(file_batches).where(
                file_batches.c.flow == flow,
                file_batches.c.sent_at.is_not(None),
                file_batches.c.result_due_at <= now,
                file_batches.c.result_missing_at.is_(None),
                file_batches.c.answered < file_batches.c.lines,
            )
        )
    )


def file_counts(conn: Connection, now: datetime) -> list[Any]:
    """(flow, not sent, result overdue) for flows with either."""
    sent = file_batches.c.sent_at.is_not(None)
    overdue = and_(
        sent, file_batches.c.result_due_at <= now, file_batches.c.answered < file_batches.c.lines
    )
    return list(
        conn.execute(
            select(
                file_batches.c.flow,
                func.sum(case((file_batches.c.sent_at.is_(None), 1), else_=0)),
                func.sum(case((overdue, 1), else_=0)),
            )
            .where(or_(~sent, overdue))
            .group_by(file_batches.c.flow)
        )
    )


def mark_missing(conn: Connection, batch_id: int, now: datetime) -> bool:
    return bool(
        conn.execute(
            update(file_batches)
            .where(file_batches.c.id == batch_id, file_batches.c.result_missing_at.is_(None))
            .values(result_missing_at=now)
        ).rowcount
    )


_BATCH_COLUMNS = [c for c in file_batches.c if c.name != "content"]


def list_batches(conn: Connection, flow: str | None, limit: int) -> list[Any]:
    query = select(*_BATCH_COLUMNS).order_by(file_batches.c.id.desc()).limit(limit)
    if flow is not None:
        query = query.where(file_batches.c.flow == flow)
    return list(conn.execute(query))


def list_results(conn: Connection, systems: Sequence[str], limit: int) -> list[Any]:
    return list(
        conn.execute(
            select(file_results)
            .where(file_results.c.system.in_(list(systems)))
            .order_by(file_results.c.id.desc())
            .limit(limit)
        )
    )


def lines_of(conn: Connection, batch_id: int) -> list[Any]:
    return list(
        conn.execute(
            select(file_lines).where(file_lines.c.batch_id == batch_id).order_by(file_lines.c.line)
        )
    )


def sent_line(conn: Connection, delivery_id: int) -> Any | None:
    """The latest file and line a delivery went out on."""
    return conn.execute(
        select(file_batches.c.name, file_lines.c.line, file_lines.c.verdict)
        .join(file_batches, file_batches.c.id == file_lines.c.batch_id)
        .where(and_(file_lines.c.delivery_id == delivery_id, file_batches.c.sent_at.is_not(None)))
        .order_by(file_batches.c.id.desc())
    ).first()


def traceparents(conn: Connection, batch_id: int) -> list[str]:
    """The trace contexts stored with the documents on a batch's lines (tracing): the file's
    span links to each."""
    return list(
        conn.execute(
            select(documents.c.traceparent)
            .distinct()
            .select_from(file_lines)
            .join(deliveries, deliveries.c.id == file_lines.c.delivery_id)
            .join(documents, documents.c.id == deliveries.c.document_id)
            .where(file_lines.c.batch_id == batch_id, documents.c.traceparent.is_not(None))
        ).scalars()
    )
