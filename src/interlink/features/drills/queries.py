"""SQL for drill runs, named once."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select

from interlink.features.drills.tables import drill_runs
from interlink.store.schema import attempts, deliveries, documents, events


def _framed(names: list[str]) -> str:
    return "," + ",".join(names) + "," if names else ""


def add_run(
    conn: Connection,
    *,
    name: str,
    file: str,
    started: datetime,
    finished: datetime,
    passed: bool,
    flows: list[str],
    outages: list[str],
    report: dict[str, Any],
) -> int:
    result = conn.execute(
        insert(drill_runs).values(
            name=name,
            file=file,
            started=started,
            finished=finished,
            passed=passed,
            flows=_framed(flows),
            outages=_framed(outages),
            report=json.dumps(report, default=str),
        )
    )
    key = result.inserted_primary_key
    return int(key[0]) if key else 0


def _literal(name: str) -> str:
    """A name for LIKE, its wildcards taken literally."""
    return name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_runs(conn: Connection, limit: int = 50) -> list[Any]:
    columns = [c for c in drill_runs.c if c.name != "report"]
    return list(
        conn.execute(select(*columns).order_by(drill_runs.c.id.desc()).limit(max(1, limit)))
    )


def get_run(conn: Connection, run_id: int) -> Any:
    return conn.execute(select(drill_runs).where(drill_runs.c.id == run_id)).first()


def last_outage_pass(conn: Connection, flow: str, system: str, since: datetime) -> Any:
    """The newest passed run since ``since`` that covered ``flow`` with ``system`` down."""
    return conn.execute(
        select(drill_runs.c.id, drill_runs.c.name, drill_runs.c.finished)
        .where(
            drill_runs.c.passed.is_(True),
            drill_runs.c.finished >= since,
            drill_runs.c.flows.like(f"%,{_literal(flow)},%", escape="\\"),
            drill_runs.c.outages.like(f"%,{_literal(system)},%", escape="\\"),
        )
        .order_by(drill_runs.c.finished.desc())
        .limit(1)
    ).first()


# -- reads of a drill's temporary store ------------------------------------------------------


# Deliveries still on their way: not yet delivered or dead.
_ON_THEIR_WAY = ("pending", "in_flight", "held")


def open_deliveries(conn: Connection) -> list[Any]:
    """Deliveries still on their way, with what a held expectation matches them by."""
    return list(
        conn.execute(
            select(
                deliveries.c.flow,
                deliveries.c.key,
                deliveries.c.revision,
                deliveries.c.status,
                deliveries.c.reason,
            ).where(deliveries.c.status.in_(_ON_THEIR_WAY))
        )
    )


def rehearsal_deliveries(conn: Connection) -> list[Any]:
    """Every delivery with its document's scenario and arrival time."""
    return list(
        conn.execute(
            select(
                deliveries.c.id,
                deliveries.c.document_id,
                deliveries.c.flow,
                deliveries.c.system,
                deliveries.c.key,
                deliveries.c.revision,
                deliveries.c.status,
                deliveries.c.reason,
                deliveries.c.attempts,
                deliveries.c.delivered_at,
                deliveries.c.last_error,
                documents.c.scenario,
                documents.c.received_at,
            )
            .join(documents, documents.c.id == deliveries.c.document_id)
            .order_by(deliveries.c.id)
        )
    )


def rehearsal_attempts(conn: Connection) -> list[Any]:
    return list(
        conn.execute(
            select(
                attempts.c.delivery_id,
                attempts.c.started_at,
                attempts.c.elapsed_ms,
                attempts.c.outcome,
                attempts.c.status_code,
                attempts.c.detail,
                deliveries.c.flow,
                deliveries.c.system,
            )
            .join(deliveries, deliveries.c.id == attempts.c.delivery_id)
            .order_by(attempts.c.id)
        )
    )


def rehearsal_events(conn: Connection) -> list[Any]:
    return list(conn.execute(select(events).order_by(events.c.id)))


def unsettled(conn: Connection) -> int:
    """Deliveries still on their way (pending, in flight or held)."""
    return int(
        conn.execute(
            select(func.count()).where(deliveries.c.status.in_(_ON_THEIR_WAY))
        ).scalar_one()
    )


def rehearsal_documents(conn: Connection) -> list[Any]:
    """Every document of the rehearsal, with its identity and stored body."""
    return list(
        conn.execute(
            select(
                documents.c.id,
                documents.c.type,
                documents.c.key,
                documents.c.revision,
                documents.c.identity,
                documents.c.source,
                documents.c.payload,
            ).order_by(documents.c.received_at, documents.c.id)
        )
    )


def file_bookings(conn: Connection) -> list[Any]:
    """Which delivery each line of each batch file carries (the hub's own record)."""
    from interlink.features.file_exchange.tables import file_batches, file_lines

    return list(
        conn.execute(
            select(
                file_batches.c.system,
                file_batches.c.name,
                file_lines.c.line,
                deliveries.c.document_id,
                deliveries.c.flow,
                deliveries.c.key,
                deliveries.c.revision,
            )
            .join(file_lines, file_lines.c.batch_id == file_batches.c.id)
            .join(deliveries, deliveries.c.id == file_lines.c.delivery_id)
        )
    )
