"""The engine's hot path: deliveries claimed and probes leased, expired leases recovered,
outcomes and attempts recorded, and the next blocked revision of each key."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Connection, select, update

from interlink.model import DeliveryUpdate, HoldReason, Status
from interlink.store.queries.batches import pg_json_rows, sqlite_many, sqlite_time
from interlink.store.schema import deliveries, flow_state

_CLAIM_RETURNING = (
    deliveries.c.id,
    deliveries.c.document_id,
    deliveries.c.flow,
    deliveries.c.system,
    deliveries.c.key,
    deliveries.c.revision,
    deliveries.c.attempts,
    deliveries.c.failures,
    deliveries.c.first_failure_at,
    deliveries.c.lease_until,
    deliveries.c.deadline,
    deliveries.c.next_at,
)


# The claim on PostgreSQL, written out: the batch leased and its documents read in one
# statement (through SQLAlchemy Core, building the statement and a second one for the
# payloads cost ~10 µs of the worker's CPU per delivery; see bench/pg_drivers.py).
_PG_CLAIM = (
    "WITH chosen AS (SELECT id FROM deliveries WHERE status = 'pending' AND flow = %(flow)s "
    "AND next_at <= %(now)s {urgent} ORDER BY {order}, id LIMIT %(limit)s "
    "FOR UPDATE SKIP LOCKED) "
    "UPDATE deliveries AS d SET status = 'in_flight', lease_until = %(lease)s, "
    "updated_at = %(now)s FROM chosen, documents AS doc "
    "WHERE d.id = chosen.id AND doc.id = d.document_id "
    "RETURNING d.id, d.document_id, d.flow, d.system, d.key, d.revision, d.attempts, "
    "d.failures, d.first_failure_at, d.lease_until, d.deadline, d.next_at, doc.type, "
    "doc.payload, doc.traceparent"
)


_PG_CLAIM_URGENT = _PG_CLAIM.format(urgent="AND deadline IS NOT NULL", order="deadline")


_PG_CLAIM_REST = _PG_CLAIM.format(urgent="", order="next_at")


# The claim on SQLite, written out too: the writer holds the database's write lock (BEGIN
# IMMEDIATE), so choosing with the documents joined and then leasing by id cannot race
# another process. Through SQLAlchemy Core (UPDATE .. RETURNING, typed rows, a second
# statement for the payloads) the claim was half of the writer's time per delivery.
_SQLITE_CHOOSE = (
    "SELECT d.id, d.document_id, d.flow, d.system, d.key, d.revision, d.attempts, d.failures, "
    "d.first_failure_at, doc.type, doc.payload, doc.traceparent "
    "FROM deliveries AS d JOIN documents AS doc ON doc.id = d.document_id "
    "WHERE d.status = 'pending' AND d.flow = ? AND d.next_at <= ? {urgent} "
    "ORDER BY d.{order}, d.id LIMIT ?"
)


_SQLITE_CHOOSE_URGENT = _SQLITE_CHOOSE.format(urgent="AND d.deadline IS NOT NULL", order="deadline")


# Asked only when the urgent ones fell short of the limit, so every due one with a deadline
# is chosen already (and not yet leased: leave them out here).
_SQLITE_CHOOSE_REST = _SQLITE_CHOOSE.format(urgent="AND d.deadline IS NULL", order="next_at")


# One parameter (the ids as a JSON array): the same statement text whatever the batch size,
# so SQLite prepares it once per connection.
_SQLITE_LEASE = (
    "UPDATE deliveries SET status = 'in_flight', lease_until = ?, updated_at = ? "
    "WHERE id IN (SELECT value FROM json_each(?))"
)


class ClaimedRow(NamedTuple):
    """A leased delivery with its document, as the SQLite claim reads it: what a job needs
    (PostgreSQL's rows carry the same names, and more)."""

    id: int
    document_id: str
    flow: str
    system: str
    key: str
    revision: int
    attempts: int
    failures: int
    first_failure_at: datetime | None
    lease_until: datetime
    type: str
    payload: str
    traceparent: str | None


def _sqlite_claim(
    conn: Connection, flow: str, now: datetime, lease_until: datetime, limit: int
) -> list[ClaimedRow]:
    at = sqlite_time(now)
    found = list(conn.exec_driver_sql(_SQLITE_CHOOSE_URGENT, (flow, at, limit)))
    if len(found) < limit:
        found += conn.exec_driver_sql(
            _SQLITE_CHOOSE_REST, (flow, at, limit - len(found))
        ).fetchall()
    if not found:
        return []
    ids = [row[0] for row in found]
    conn.exec_driver_sql(_SQLITE_LEASE, (sqlite_time(lease_until), at, orjson.dumps(ids).decode()))
    return [ClaimedRow._make((*row[:8], _parsed(row[8]), lease_until, *row[9:12])) for row in found]


def _parsed(text: str | None) -> datetime | None:
    # SQLite keeps naive UTC text (schema.UTCDateTime).
    return None if text is None else datetime.fromisoformat(text).replace(tzinfo=UTC)


def claim(
    conn: Connection, flow: str, now: datetime, lease_until: datetime, limit: int
) -> list[Any]:
    """Lease up to ``limit`` due pending deliveries of ``flow``.

    Those with a deadline go first, earliest deadline first; then the rest, oldest due first.
    Two statements, so that each walks an index in its own order. The rows also carry the
    document's ``type``, ``payload`` and ``traceparent``.
    """
    if conn.dialect.name == "sqlite":
        return _sqlite_claim(conn, flow, now, lease_until, limit)
    if conn.dialect.name == "postgresql":  # the only other store
        params = {"flow": flow, "now": now, "lease": lease_until, "limit": limit}
        # RETURNING keeps no order: sort what was leased the way it was chosen.
        rows = sorted(
            conn.exec_driver_sql(_PG_CLAIM_URGENT, params), key=lambda r: (r.deadline, r.id)
        )
        if len(rows) < limit:
            params["limit"] = limit - len(rows)
            more = conn.exec_driver_sql(_PG_CLAIM_REST, params)
            rows.extend(sorted(more, key=lambda r: (r.next_at, r.id)))
        return rows
    raise NotImplementedError(f"no claim for {conn.dialect.name}")


def claim_probe(conn: Connection, system: str, now: datetime, lease_until: datetime) -> list[Any]:
    """Lease the oldest delivery held because ``system`` is down, to probe with.

    Never one of a flow that is itself held (paused, auth): that flow must send nothing.
    """
    held_flows = select(flow_state.c.flow).where(flow_state.c.hold.is_not(None))
    oldest = (
        select(deliveries.c.id)
        .where(
            deliveries.c.system == system,
            deliveries.c.status == Status.HELD,
            deliveries.c.reason == HoldReason.DOWNSTREAM_DOWN,
            deliveries.c.flow.not_in(held_flows),
        )
        .order_by(deliveries.c.id)
        .limit(1)
    )
    if conn.dialect.name == "postgresql":
        oldest = oldest.with_for_update(skip_locked=True)
    stmt = (
        update(deliveries)
        .where(deliveries.c.id.in_(oldest.scalar_subquery()))
        .values(
            status=Status.IN_FLIGHT,
            reason=None,
            probe=True,
            lease_until=lease_until,
            updated_at=now,
        )
        .returning(*_CLAIM_RETURNING)
    )
    return list(conn.execute(stmt))


def recover_expired_leases(conn: Connection, now: datetime) -> int:
    """Leases that ran out belong to a worker that died: their deliveries go back to pending.

    A probe that was in flight goes back to the held pile it came from.
    """
    probes = conn.execute(
        update(deliveries)
        .where(
            deliveries.c.status == Status.IN_FLIGHT,
            deliveries.c.lease_until < now,
            deliveries.c.probe.is_(True),
        )
        .values(
            status=Status.HELD,
            reason=HoldReason.DOWNSTREAM_DOWN,
            probe=False,
            lease_until=None,
            updated_at=now,
        )
    ).rowcount
    others = conn.execute(
        update(deliveries)
        .where(deliveries.c.status == Status.IN_FLIGHT, deliveries.c.lease_until < now)
        .values(status=Status.PENDING, lease_until=None, next_at=now, updated_at=now)
    ).rowcount
    return int(probes or 0) + int(others or 0)


# The two statements of the engine's hot path are written out per store. On PostgreSQL each is
# one statement whose rows travel as one JSON parameter, expanded by the server
# (``json_to_recordset``): executemany ran one statement per row on the server, and array
# parameters cost the driver ~25 µs per row to encode in Python; orjson encodes a batch of 500
# in well under a millisecond. On SQLite, see batches.sqlite_many.
_PG_RECORD = (
    "UPDATE deliveries AS d SET status = v.status, reason = v.reason, attempts = v.attempts, "
    "failures = v.failures, next_at = v.next_at, lease_until = NULL, "
    "first_failure_at = v.first_failure_at, delivered_at = v.delivered_at, "
    "last_error = v.last_error, probe = v.probe, updated_at = v.updated_at "
    "FROM json_to_recordset(%s::json) AS v(id bigint, lease_until timestamptz, status text, "
    "reason text, attempts int, failures int, next_at timestamptz, "
    "first_failure_at timestamptz, delivered_at timestamptz, last_error text, probe bool, "
    "updated_at timestamptz) "
    "WHERE d.id = v.id AND d.status = 'in_flight' AND d.lease_until = v.lease_until"
)


_PG_ATTEMPTS = (
    "INSERT INTO attempts (delivery_id, started_at, elapsed_ms, status_code, outcome, detail, "
    "response, probe) SELECT delivery_id, started_at, elapsed_ms, status_code, outcome, detail, "
    "response, probe FROM json_to_recordset(%s::json) AS v(delivery_id bigint, "
    "started_at timestamptz, elapsed_ms float8, status_code int, outcome text, detail text, "
    "response text, probe bool)"
)


_ATTEMPT_KEYS = (
    "delivery_id",
    "started_at",
    "elapsed_ms",
    "status_code",
    "outcome",
    "detail",
    "response",
    "probe",
)


_RECORD_MANY_SQLITE = (
    "WITH v(b_id, b_lease, status, reason, attempts, failures, next_at, first_failure_at, "
    "delivered_at, last_error, probe, updated_at) AS (VALUES {values}) "
    "UPDATE deliveries SET status=v.status, reason=v.reason, attempts=v.attempts, "
    "failures=v.failures, next_at=v.next_at, lease_until=NULL, "
    "first_failure_at=v.first_failure_at, delivered_at=v.delivered_at, "
    "last_error=v.last_error, probe=v.probe, updated_at=v.updated_at "
    "FROM v WHERE deliveries.id=v.b_id AND deliveries.status='in_flight' "
    "AND deliveries.lease_until=v.b_lease"
)


_RECORD_MANY_KEYS = (
    "id",
    "lease_until",
    "status",
    "reason",
    "attempts",
    "failures",
    "next_at",
    "first_failure_at",
    "delivered_at",
    "last_error",
    "probe",
    "updated_at",
)


_ATTEMPT_MANY_SQLITE = (
    "INSERT INTO attempts (delivery_id, started_at, elapsed_ms, status_code, outcome, detail, "
    "response, probe) VALUES {values}"
)


def record_outcomes(conn: Connection, updates: Sequence[DeliveryUpdate]) -> None:
    """Apply outcomes to leased deliveries; a row whose lease was lost is left alone.

    The updates are the bind rows as they are: their ``id`` and ``lease_until`` select the
    row (attributes on SQLite, JSON fields on PostgreSQL, where orjson writes dataclasses)."""
    if not updates:
        return
    if conn.dialect.name == "sqlite":
        sqlite_many(conn, _RECORD_MANY_SQLITE, _RECORD_MANY_KEYS, updates, attrgetter)
    else:
        pg_json_rows(conn, _PG_RECORD, updates)


def insert_attempts(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        sqlite_many(conn, _ATTEMPT_MANY_SQLITE, _ATTEMPT_KEYS, rows)
    else:
        pg_json_rows(conn, _PG_ATTEMPTS, rows)


# The PostgreSQL form probes the index once per key (see documents._PG_IDENTITIES).
_PG_NEXT_BLOCKED = (
    "SELECT d.id, d.flow, d.system FROM unnest(%s::text[], %s::text[]) AS k(flow, key) "
    "CROSS JOIN LATERAL (SELECT id, flow, system FROM deliveries WHERE flow = k.flow "
    "AND key = k.key AND status = 'held' AND reason = 'blocked' "
    "ORDER BY revision LIMIT 1) AS d"
)


def next_blocked(conn: Connection, pairs: Sequence[tuple[str, str]]) -> list[Any]:
    """For each (flow, key), the lowest held:blocked revision, if any."""
    if conn.dialect.name == "postgresql":
        flows, keys = zip(*pairs, strict=True) if pairs else ((), ())
        return list(conn.exec_driver_sql(_PG_NEXT_BLOCKED, (list(flows), list(keys))))
    result = []
    for flow, key in pairs:
        row = conn.execute(
            select(deliveries.c.id, deliveries.c.flow, deliveries.c.system)
            .where(
                deliveries.c.flow == flow,
                deliveries.c.key == key,
                deliveries.c.status == Status.HELD,
                deliveries.c.reason == HoldReason.BLOCKED,
            )
            .order_by(deliveries.c.revision)
            .limit(1)
        ).first()
        if row is not None:
            result.append(row)
    return result


def probing_systems(conn: Connection) -> set[str]:
    """Systems with a probe in flight (by any worker)."""
    rows = conn.execute(
        select(deliveries.c.system)
        .where(deliveries.c.status == Status.IN_FLIGHT, deliveries.c.probe.is_(True))
        .distinct()
    )
    return {row[0] for row in rows}
