"""Every SQL statement Interlink runs, named once (the procrastinate pattern).

Functions take a SQLAlchemy ``Connection`` and plain values, and return plain rows or domain
objects from :mod:`interlink.model`. Nothing above the store writes SQL.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import attrgetter, itemgetter
from typing import Any

import orjson
from sqlalchemy import Connection, any_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY

from interlink.model import (
    Attempt,
    CircuitState,
    Delivery,
    DeliveryUpdate,
    Document,
    HoldReason,
    Status,
)
from interlink.store.schema import (
    attempts,
    audit,
    circuits,
    deliveries,
    documents,
    events,
    flow_state,
    workers,
)

# PostgreSQL forms of the lookups that take a batch of keys. Each probes the index once per
# key (a scalar subquery, or LATERAL with LIMIT, cannot become a hash join): with `= ANY`, a
# table without planner statistics yet (a fresh database, before autovacuum's first ANALYZE)
# is read whole for every batch — measured 70 ms per 500 keys at 20,000 rows, 2 ms this way.
_PG_IDENTITIES = (
    "SELECT k.identity, d.id, d.payload_hash FROM unnest(%s::text[]) AS k(identity) "
    "CROSS JOIN LATERAL (SELECT id, payload_hash FROM documents "
    "WHERE type = %s AND source = %s AND identity = k.identity LIMIT 1) AS d"
)
# The newest revision's row, read backwards along uq_documents_revision (type, source, key, rev).
_PG_LATEST = (
    "SELECT k.key, d.revision, d.id, d.payload_hash FROM unnest(%s::text[]) AS k(key) "
    "CROSS JOIN LATERAL (SELECT revision, id, payload_hash FROM documents "
    "WHERE type = %s AND source = %s AND key = k.key ORDER BY revision DESC LIMIT 1) AS d"
)
_PG_UNDELIVERED_KEYS = (
    "SELECT k.key FROM unnest(%s::text[]) AS k(key) WHERE (SELECT true FROM deliveries "
    "WHERE flow = %s AND key = k.key AND status <> 'delivered' LIMIT 1)"
)
_PG_NEXT_BLOCKED = (
    "SELECT d.id, d.flow, d.system FROM unnest(%s::text[], %s::text[]) AS k(flow, key) "
    "CROSS JOIN LATERAL (SELECT id, flow, system FROM deliveries WHERE flow = k.flow "
    "AND key = k.key AND status = 'held' AND reason = 'blocked' "
    "ORDER BY revision LIMIT 1) AS d"
)

# -- documents --------------------------------------------------------------------------------


def documents_by_identity(
    conn: Connection, type_: str, source: str, identities: Sequence[str]
) -> dict[str, Any]:
    """identity → (id, payload_hash) for the identities ``source`` already stored: identities
    belong to the submitting system, so another's never makes this one a duplicate."""
    found: dict[str, Any] = {}
    if conn.dialect.name == "postgresql":
        rows = conn.exec_driver_sql(_PG_IDENTITIES, (list(identities), type_, source))
        return {row.identity: row for row in rows}
    for chunk in _chunks(identities, 500):
        rows = conn.execute(
            select(documents.c.identity, documents.c.id, documents.c.payload_hash).where(
                documents.c.type == type_,
                documents.c.source == source,
                _member(conn, documents.c.identity, chunk),
            )
        )
        for row in rows:
            found[row.identity] = row
    return found


def latest_revisions(
    conn: Connection, type_: str, source: str, keys: Sequence[str]
) -> dict[str, Any]:
    """key → (revision, id, payload_hash) of the newest revision ``source`` stored of it.

    Revisions are numbered per source: another system's document with the same key is not
    an earlier revision of this one.
    """
    found: dict[str, Any] = {}
    unique = list(dict.fromkeys(keys))
    if conn.dialect.name == "postgresql":
        rows = conn.exec_driver_sql(_PG_LATEST, (unique, type_, source))
        return {row.key: row for row in rows}
    for chunk in _chunks(unique, 500):
        # SQLite takes the bare columns (id, payload_hash) from the row where max() is found.
        rows = conn.execute(
            select(
                documents.c.key,
                func.max(documents.c.revision).label("revision"),
                documents.c.id,
                documents.c.payload_hash,
            )
            .where(
                documents.c.type == type_,
                documents.c.source == source,
                _member(conn, documents.c.key, chunk),
            )
            .group_by(documents.c.key)
        )
        found.update({row.key: row for row in rows})
    return found


# Intake's two inserts, written out per store like the engine's hot path (see _PG_RECORD and
# _sqlite_many): through SQLAlchemy, converting each row's parameters took half the API's time
# on batches.
_DOCUMENT_COLUMNS = (
    ("id", "text"),
    ("type", "text"),
    ("key", "text"),
    ("revision", "int"),
    ("identity", "text"),
    ("payload_hash", "text"),
    ("payload", "text"),
    ("source", "text"),
    ("scenario", "text"),
    ("deadline", "timestamptz"),
    ("amount", "text"),
    ("received_at", "timestamptz"),
)
_DELIVERY_COLUMNS = (
    ("document_id", "text"),
    ("flow", "text"),
    ("system", "text"),
    ("key", "text"),
    ("revision", "int"),
    ("status", "text"),
    ("reason", "text"),
    ("attempts", "int"),
    ("failures", "int"),
    ("next_at", "timestamptz"),
    ("deadline", "timestamptz"),
    ("probe", "bool"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
)


def _insert_rows(
    conn: Connection, table: str, columns: Sequence[tuple[str, str]], rows: list[dict[str, Any]]
) -> None:
    if not rows:
        return
    # S608: table and column names come from the callers' literals, values are bound.
    names = ", ".join(name for name, _ in columns)
    if conn.dialect.name == "postgresql":
        record = ", ".join(f"{name} {kind}" for name, kind in columns)
        sql = f"INSERT INTO {table} ({names}) SELECT {names} FROM json_to_recordset(%s::json) "  # noqa: S608
        _pg_json_rows(conn, sql + f"AS v({record})", rows)
    else:
        sql = f"INSERT INTO {table} ({names}) VALUES {{values}}"  # noqa: S608
        _sqlite_many(conn, sql, [name for name, _ in columns], rows)


def insert_documents(conn: Connection, rows: list[dict[str, Any]]) -> None:
    _insert_rows(conn, "documents", _DOCUMENT_COLUMNS, rows)


def get_document(conn: Connection, document_id: str) -> Document | None:
    row = conn.execute(select(documents).where(documents.c.id == document_id)).first()
    return _document(row) if row is not None else None


def find_documents(
    conn: Connection,
    key: str,
    type_: str | None = None,
    limit: int = 100,
    source: str | None = None,
) -> list[Document]:
    query = select(documents).where(documents.c.key == key)
    if type_:
        query = query.where(documents.c.type == type_)
    if source is not None:
        query = query.where(documents.c.source == source)
    # Each source's revisions together: two systems may send the same key (identity by source).
    query = query.order_by(documents.c.type, documents.c.source, documents.c.revision).limit(limit)
    return [_document(row) for row in conn.execute(query)]


def sources_of(conn: Connection, document_ids: Iterable[str]) -> dict[str, str]:
    """id → the system that submitted it."""
    found: dict[str, str] = {}
    for chunk in _chunks(list(dict.fromkeys(document_ids)), 500):
        rows = conn.execute(
            select(documents.c.id, documents.c.source).where(_member(conn, documents.c.id, chunk))
        )
        found.update({row.id: row.source for row in rows})
    return found


def payloads(conn: Connection, document_ids: Iterable[str]) -> dict[str, Any]:
    """id → row(id, type, payload) for the documents being sent."""
    found: dict[str, Any] = {}
    for chunk in _chunks(list(dict.fromkeys(document_ids)), 500):
        rows = conn.execute(
            select(documents.c.id, documents.c.type, documents.c.payload).where(
                _member(conn, documents.c.id, chunk)
            )
        )
        found.update({row.id: row for row in rows})
    return found


def _document(row: Any) -> Document:
    return Document(
        id=row.id,
        type=row.type,
        key=row.key,
        revision=row.revision,
        source=row.source,
        payload_text=row.payload,
        payload_hash=row.payload_hash,
        identity=row.identity,
        scenario=row.scenario,
        deadline=row.deadline,
        amount=row.amount,
        received_at=row.received_at,
    )


# -- deliveries: intake side ------------------------------------------------------------------


def insert_deliveries(conn: Connection, rows: list[dict[str, Any]]) -> None:
    _insert_rows(conn, "deliveries", _DELIVERY_COLUMNS, rows)


def keys_with_undelivered(conn: Connection, flow: str, keys: Sequence[str]) -> set[str]:
    """Keys on ``flow`` that have a revision not yet delivered (ordering barrier).

    A flow has one source, so its keys are that source's alone: another system's revisions
    of the same key never block it.
    """
    if conn.dialect.name == "postgresql":
        rows = conn.exec_driver_sql(_PG_UNDELIVERED_KEYS, (list(keys), flow))
        return {row[0] for row in rows}
    found: set[str] = set()
    for chunk in _chunks(keys, 500):
        rows = conn.execute(
            select(deliveries.c.key)
            .where(
                deliveries.c.flow == flow,
                _member(conn, deliveries.c.key, chunk),
                deliveries.c.status != Status.DELIVERED,
            )
            .distinct()
        )
        found.update(row[0] for row in rows)
    return found


def deliveries_of(conn: Connection, document_ids: Sequence[str]) -> list[Delivery]:
    result: list[Delivery] = []
    for chunk in _chunks(document_ids, 500):
        rows = conn.execute(
            select(deliveries)
            .where(_member(conn, deliveries.c.document_id, chunk))
            .order_by(deliveries.c.id)
        )
        result.extend(_delivery(row) for row in rows)
    return result


# -- deliveries: engine side ------------------------------------------------------------------


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
    "doc.payload"
)
_PG_CLAIM_URGENT = _PG_CLAIM.format(urgent="AND deadline IS NOT NULL", order="deadline")
_PG_CLAIM_REST = _PG_CLAIM.format(urgent="", order="next_at")


def claim(
    conn: Connection, flow: str, now: datetime, lease_until: datetime, limit: int
) -> list[Any]:
    """Lease up to ``limit`` due pending deliveries of ``flow``.

    Those with a deadline go first, earliest deadline first; then the rest, oldest due first.
    Two statements, so that each walks an index in its own order. On PostgreSQL the rows
    also carry the document's ``type`` and ``payload``.
    """
    if conn.dialect.name == "postgresql":
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
    due = [
        deliveries.c.status == Status.PENDING,
        deliveries.c.flow == flow,
        deliveries.c.next_at <= now,
    ]
    urgent = (
        select(deliveries.c.id)
        .where(*due, deliveries.c.deadline.is_not(None))
        .order_by(deliveries.c.deadline, deliveries.c.id)
        .limit(limit)
    )
    rows = sorted(_lease(conn, urgent, now, lease_until), key=lambda r: (r.deadline, r.id))
    if len(rows) < limit:
        rest = (
            select(deliveries.c.id)
            .where(*due)
            .order_by(deliveries.c.next_at, deliveries.c.id)
            .limit(limit - len(rows))
        )
        leased = _lease(conn, rest, now, lease_until)
        rows.extend(sorted(leased, key=lambda r: (r.next_at, r.id)))
    return rows


def _lease(conn: Connection, chosen: Any, now: datetime, lease_until: datetime) -> list[Any]:
    if conn.dialect.name == "postgresql":
        chosen = chosen.with_for_update(skip_locked=True)
    stmt = (
        update(deliveries)
        .where(deliveries.c.id.in_(chosen.scalar_subquery()))
        .values(status=Status.IN_FLIGHT, lease_until=lease_until, updated_at=now)
        .returning(*_CLAIM_RETURNING)
    )
    return list(conn.execute(stmt))


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
# in well under a millisecond. On SQLite, see _sqlite_many.
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


def _pg_json_rows(conn: Connection, sql: str, rows: Sequence[Any]) -> None:
    """Run ``sql`` with the rows as its one JSON parameter (see _PG_RECORD)."""
    conn.exec_driver_sql(sql, (orjson.dumps(rows).decode(),))


# On SQLite the rows go in one multi-row statement per chunk, not executemany: the driver
# gives up and retakes the GIL around every row of an executemany, and with the event loop
# busy in the other thread each retake waits (measured: 2.35 s of 4.4 s for 20,000 outcomes).
_CHUNK_VARIABLES = 30_000

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


def _sqlite_many(
    conn: Connection,
    sql: str,
    keys: Sequence[str],
    rows: Sequence[Any],
    get: Callable[..., Any] = itemgetter,
) -> None:
    per_row = "(" + ", ".join("?" * len(keys)) + ")"
    size = max(1, _CHUNK_VARIABLES // len(keys))
    columns = get(*keys)  # a row's values in order (keys: two or more)
    # A batch's rows share a few times (its "now"): each is formatted once. Enum values go
    # as they are: sqlite3 binds a str subclass as its text.
    times: dict[datetime, str] = {}

    def text(at: datetime) -> str:
        # The exact text SQLAlchemy's SQLite DateTime writes, so both compare equal.
        found = times[at] = at.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
        return found

    for chunk in _chunks(rows, size):
        values = [v for row in chunk for v in columns(row)]
        params = tuple(
            [(times.get(v) or text(v)) if isinstance(v, datetime) else v for v in values]
        )
        conn.exec_driver_sql(sql.format(values=", ".join([per_row] * len(chunk))), params)


def record_outcomes(conn: Connection, updates: Sequence[DeliveryUpdate]) -> None:
    """Apply outcomes to leased deliveries; a row whose lease was lost is left alone.

    The updates are the bind rows as they are: their ``id`` and ``lease_until`` select the
    row (attributes on SQLite, JSON fields on PostgreSQL, where orjson writes dataclasses)."""
    if not updates:
        return
    if conn.dialect.name == "sqlite":
        _sqlite_many(conn, _RECORD_MANY_SQLITE, _RECORD_MANY_KEYS, updates, attrgetter)
    else:
        _pg_json_rows(conn, _PG_RECORD, updates)


def insert_attempts(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        _sqlite_many(conn, _ATTEMPT_MANY_SQLITE, _ATTEMPT_KEYS, rows)
    else:
        _pg_json_rows(conn, _PG_ATTEMPTS, rows)


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
    for chunk in _chunks(ids, 500):
        count += (
            conn.execute(
                update(deliveries).where(_member(conn, deliveries.c.id, chunk)).values(**values)
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


# -- deliveries: reading ----------------------------------------------------------------------


def delivery_filter(
    *,
    flow: str | None = None,
    status: str | None = None,
    reason: str | None = None,
    key: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Any]:
    conditions: list[Any] = []
    if flow:
        conditions.append(deliveries.c.flow == flow)
    if status:
        conditions.append(deliveries.c.status == status)
    if reason:
        conditions.append(deliveries.c.reason == reason)
    if key:
        conditions.append(deliveries.c.key == key)
    if since:
        conditions.append(deliveries.c.updated_at >= since)
    if until:
        conditions.append(deliveries.c.updated_at < until)
    return conditions


def unindexed(conn: Connection, column: Any) -> Any:
    """``column`` as an expression SQLite will not look up through an index.

    Without statistics SQLite takes ``flow = ?`` for a selective condition and walks a flow
    index: on a flow of a million deliveries that reads them all (and sorts them for ORDER BY
    id), where walking the primary key stops after a page. PostgreSQL plans from statistics
    and gets the column as it is.
    """
    return func.coalesce(column, "") if conn.dialect.name == "sqlite" else column


def page_delivery_ids(
    conn: Connection,
    *,
    flow: str | None = None,
    status: str | None = None,
    reason: str | None = None,
    key: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: int | None = None,
    limit: int = 100,
) -> list[int]:
    """Ids of one page of deliveries, newest first, paged by id (``before``).

    The same filter as ``delivery_filter``, planned for paging: by business key through the
    (flow, key) index, otherwise along the primary key, newest first, stopping after
    ``limit`` matches (measured on a flow of 1,000,000: 110 ms through the flow index, a few
    ms this way; a filter that matches nothing on a huge table reads it all).
    """
    c = deliveries.c
    conditions: list[Any] = []
    if key:
        conditions.append(c.key == key)
        if flow:
            conditions.append(c.flow == flow)
    elif flow:
        conditions.append(unindexed(conn, c.flow) == flow)
    if status:
        conditions.append(unindexed(conn, c.status) == status)
    if reason:
        conditions.append(unindexed(conn, c.reason) == reason)
    if since:
        conditions.append(c.updated_at >= since)
    if until:
        conditions.append(c.updated_at < until)
    if before is not None:
        conditions.append(c.id < before)
    query = select(c.id).where(*conditions).order_by(c.id.desc()).limit(limit)
    return [row[0] for row in conn.execute(query)]


def deliveries_by_id(conn: Connection, ids: Sequence[int]) -> list[Delivery]:
    """The deliveries with these ids, newest first."""
    if not ids:
        return []
    query = select(deliveries).where(_member(conn, deliveries.c.id, ids))
    return [_delivery(row) for row in conn.execute(query.order_by(deliveries.c.id.desc()))]


def list_deliveries(
    conn: Connection, *, before: int | None = None, limit: int = 100, **filters: Any
) -> list[Delivery]:
    """One page of deliveries matching ``filters`` (see page_delivery_ids), newest first."""
    return deliveries_by_id(conn, page_delivery_ids(conn, before=before, limit=limit, **filters))


def delivery_ids(conn: Connection, conditions: list[Any]) -> list[int]:
    return [row[0] for row in conn.execute(select(deliveries.c.id).where(*conditions))]


def get_delivery(conn: Connection, delivery_id: int) -> Delivery | None:
    row = conn.execute(select(deliveries).where(deliveries.c.id == delivery_id)).first()
    return _delivery(row) if row is not None else None


def attempts_of(conn: Connection, delivery_ids: Sequence[int]) -> dict[int, list[Attempt]]:
    found: dict[int, list[Attempt]] = {}
    for chunk in _chunks(delivery_ids, 500):
        rows = conn.execute(
            select(attempts)
            .where(_member(conn, attempts.c.delivery_id, chunk))
            .order_by(attempts.c.id)
        )
        for row in rows:
            found.setdefault(row.delivery_id, []).append(
                Attempt(
                    id=row.id,
                    delivery_id=row.delivery_id,
                    started_at=row.started_at,
                    elapsed_ms=row.elapsed_ms,
                    status_code=row.status_code,
                    outcome=row.outcome,
                    detail=row.detail,
                    response=row.response,
                    probe=row.probe,
                )
            )
    return found


def counts(conn: Connection) -> list[Any]:
    """(flow, status, reason, count) over all deliveries."""
    return list(
        conn.execute(
            select(
                deliveries.c.flow, deliveries.c.status, deliveries.c.reason, func.count()
            ).group_by(deliveries.c.flow, deliveries.c.status, deliveries.c.reason)
        )
    )


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=row.id,
        document_id=row.document_id,
        flow=row.flow,
        system=row.system,
        key=row.key,
        revision=row.revision,
        status=row.status,
        reason=row.reason,
        attempts=row.attempts,
        failures=row.failures,
        next_at=row.next_at,
        lease_until=row.lease_until,
        created_at=row.created_at,
        updated_at=row.updated_at,
        delivered_at=row.delivered_at,
        last_error=row.last_error,
        deadline=row.deadline,
    )


# -- circuits, flow holds, events, audit ------------------------------------------------------


def load_circuits(conn: Connection) -> list[Any]:
    return list(conn.execute(select(circuits)))


def open_circuits(conn: Connection) -> set[str]:
    """Systems whose circuit is open."""
    rows = conn.execute(select(circuits.c.system).where(circuits.c.state == CircuitState.OPEN))
    return {row.system for row in rows}


def save_circuit(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(delete(circuits).where(circuits.c.system == values["system"]))
    conn.execute(insert(circuits).values(**values))


def flow_holds(conn: Connection) -> dict[str, str]:
    rows = conn.execute(
        select(flow_state.c.flow, flow_state.c.hold).where(flow_state.c.hold.is_not(None))
    )
    return {row.flow: row.hold for row in rows}


def flow_hold_rows(conn: Connection) -> list[Any]:
    return list(conn.execute(select(flow_state)))


def set_flow_hold(
    conn: Connection, flow: str, hold: str | None, now: datetime, actor: str, note: str = ""
) -> None:
    conn.execute(delete(flow_state).where(flow_state.c.flow == flow))
    conn.execute(insert(flow_state).values(flow=flow, hold=hold, since=now, actor=actor, note=note))


def add_event(
    conn: Connection,
    at: datetime,
    kind: str,
    detail: Mapping[str, Any],
    system: str | None = None,
    flow: str | None = None,
) -> None:
    conn.execute(
        insert(events).values(
            at=at, kind=kind, system=system, flow=flow, detail=json.dumps(dict(detail), default=str)
        )
    )


def list_events(conn: Connection, limit: int = 100, since_id: int = 0) -> list[Any]:
    return list(
        conn.execute(
            select(events).where(events.c.id > since_id).order_by(events.c.id.desc()).limit(limit)
        )
    )


def add_audit(
    conn: Connection, at: datetime, actor: str, action: str, target: str, detail: Mapping[str, Any]
) -> None:
    conn.execute(
        insert(audit).values(
            at=at,
            actor=actor,
            action=action,
            target=target,
            detail=json.dumps(dict(detail), default=str),
        )
    )


def list_audit(conn: Connection, target: str | None = None, limit: int = 100) -> list[Any]:
    query = select(audit)
    if target:
        query = query.where(or_(audit.c.target == target, audit.c.target.like(f"{target}:%")))
    return list(conn.execute(query.order_by(audit.c.id.desc()).limit(limit)))


def _member(conn: Connection, column: Any, values: Sequence[Any]) -> Any:
    """``column IN values``; on PostgreSQL ``= ANY(array)``, one parameter instead of
    hundreds (measured: 100 ms against 2 ms per 500-key lookup at intake)."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(values)


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def with_undelivered_predecessor(conn: Connection, ids: Sequence[int]) -> set[int]:
    """Of ``ids``, those with a lower revision of the same key and flow not yet delivered."""
    earlier = deliveries.alias("earlier")
    found: set[int] = set()
    for chunk in _chunks(ids, 500):
        rows = conn.execute(
            select(deliveries.c.id).where(
                _member(conn, deliveries.c.id, chunk),
                select(earlier.c.id)
                .where(
                    earlier.c.flow == deliveries.c.flow,
                    earlier.c.key == deliveries.c.key,
                    earlier.c.revision < deliveries.c.revision,
                    earlier.c.status != Status.DELIVERED,
                )
                .exists(),
            )
        )
        found.update(row[0] for row in rows)
    return found


def delivery_rows(conn: Connection, conditions: list[Any]) -> list[Any]:
    """(id, flow, system) of the deliveries matching ``conditions``."""
    return list(
        conn.execute(
            select(deliveries.c.id, deliveries.c.flow, deliveries.c.system)
            .where(*conditions)
            .order_by(deliveries.c.id)
        )
    )


# -- workers and wake-ups ---------------------------------------------------------------------


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


def notify_registry(conn: Connection) -> None:
    """Ask the other workers to look at the registry now (a worker joined, or wants more of
    its fair part): sent at commit, on the channel they listen to for work."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_notify(WORK_CHANNEL, REGISTRY_NEWS)))


def retire_worker(conn: Connection, worker_id: str, now: datetime) -> None:
    """A worker stopped cleanly: it holds nothing now, and counts no more among the live.
    The row stays a while, so that the others take its shares only once they settled."""
    conn.execute(
        update(workers)
        .where(workers.c.id == worker_id)
        .values(shares="{}", released_at=now, retired_at=now)
    )


def probing_systems(conn: Connection) -> set[str]:
    """Systems with a probe in flight (by any worker)."""
    rows = conn.execute(
        select(deliveries.c.system)
        .where(deliveries.c.status == Status.IN_FLIGHT, deliveries.c.probe.is_(True))
        .distinct()
    )
    return {row[0] for row in rows}


WORK_CHANNEL = "interlink_work"
REGISTRY_NEWS = "registry"  # the payload of a notification about the worker registry


def notify_work(conn: Connection) -> None:
    """Wake idle workers in other processes (PostgreSQL LISTEN/NOTIFY; sent at commit)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"NOTIFY {WORK_CHANNEL}")


# -- retention --------------------------------------------------------------------------------


def _prunable(cutoff: datetime) -> list[Any]:
    """Documents received before ``cutoff`` whose every delivery is delivered.

    A document with any delivery not delivered (pending, held, dead, in flight) never
    qualifies, however old.
    """
    unfinished = (
        select(deliveries.c.id)
        .where(deliveries.c.document_id == documents.c.id, deliveries.c.status != Status.DELIVERED)
        .exists()
    )
    return [documents.c.received_at < cutoff, ~unfinished]


def prunable_documents(conn: Connection, cutoff: datetime, limit: int) -> list[str]:
    rows = conn.execute(
        select(documents.c.id)
        .where(*_prunable(cutoff))
        .order_by(documents.c.received_at)
        .limit(limit)
    )
    return [row[0] for row in rows]


def count_prunable(conn: Connection, cutoff: datetime) -> int:
    return int(
        conn.execute(select(func.count()).select_from(documents).where(*_prunable(cutoff))).scalar()
        or 0
    )


def delete_documents(conn: Connection, document_ids: Sequence[str]) -> tuple[int, int, int]:
    """Delete documents with their deliveries and attempts; counts of each removed."""
    removed = [0, 0, 0]
    for chunk in _chunks(document_ids, 500):
        ids = select(deliveries.c.id).where(_member(conn, deliveries.c.document_id, chunk))
        removed[2] += conn.execute(delete(attempts).where(attempts.c.delivery_id.in_(ids))).rowcount
        removed[1] += conn.execute(
            delete(deliveries).where(_member(conn, deliveries.c.document_id, chunk))
        ).rowcount
        removed[0] += conn.execute(
            delete(documents).where(_member(conn, documents.c.id, chunk))
        ).rowcount
    return removed[0], removed[1], removed[2]


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


def keys_of(conn: Connection, ids: Sequence[int]) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for chunk in _chunks(ids, 500):
        rows = conn.execute(
            select(deliveries.c.flow, deliveries.c.key).where(_member(conn, deliveries.c.id, chunk))
        )
        found.update((row[0], row[1]) for row in rows)
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
