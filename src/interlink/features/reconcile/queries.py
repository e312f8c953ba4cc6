"""Every SQL statement of reconciliation, named once."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, case, cast, func, insert, literal, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

from interlink.features.reconcile.tables import reconcile_items, reconcile_runs
from interlink.store.schema import UTCDateTime, deliveries, documents

STREAM_BATCH = 10_000


def _payload_field(conn: Connection, field: str) -> ColumnElement[Any]:
    if conn.dialect.name == "postgresql":
        return func.jsonb_extract_path_text(cast(documents.c.payload, JSONB), field)
    return func.json_extract(documents.c.payload, f'$."{field}"')


def ours(
    conn: Connection,
    flow: str,
    since: datetime | None,
    until: datetime | None,
    status_field: str | None,
    currency_field: str | None,
) -> Iterator[tuple[Any, ...]]:
    """(delivery id, key, revision, delivery status, amount, scenario-or-kind, currency, late)
    for every delivery on ``flow`` whose document was received in [since, until), in key and
    revision order (byte order of the key on every database)."""
    key = deliveries.c.key
    if conn.dialect.name == "postgresql":
        key = key.collate("C")  # type: ignore[assignment]
    status: ColumnElement[Any] = documents.c.scenario
    if status_field:
        status = func.coalesce(documents.c.scenario, _payload_field(conn, status_field))
    currency: ColumnElement[Any] = (
        _payload_field(conn, currency_field) if currency_field else literal(None)
    )
    late: ColumnElement[Any] = (
        case((deliveries.c.delivered_at >= until, 1), else_=0) if until else literal(0)
    )
    query = (
        select(
            deliveries.c.id,
            deliveries.c.key,
            deliveries.c.revision,
            deliveries.c.status,
            documents.c.amount,
            status,
            currency,
            late,
        )
        .join(documents, documents.c.id == deliveries.c.document_id)
        .where(deliveries.c.flow == flow)
        .order_by(key, deliveries.c.revision)
    )
    if since is not None:
        query = query.where(documents.c.received_at >= since)
    if until is not None:
        query = query.where(documents.c.received_at < until)
    if conn.dialect.name == "sqlite":
        # The rows carry no type needing conversion, and SQLAlchemy's per-row result
        # processing costs more than the query itself at a million rows: read the driver's
        # cursor directly, with the parameters bound exactly as SQLAlchemy binds them.
        yield from _sqlite_rows(conn, query)
        return
    result = conn.execution_options(stream_results=True, yield_per=STREAM_BATCH).execute(query)
    for partition in result.partitions():
        yield from partition


def _sqlite_rows(conn: Connection, query: Select[Any]) -> Iterator[tuple[Any, ...]]:
    compiled = query.compile(dialect=conn.dialect)
    values = compiled.construct_params()
    to_text = UTCDateTime().bind_processor(conn.dialect)
    params = []
    for name in compiled.positiontup or ():
        value = values[name]
        if isinstance(value, datetime) and to_text is not None:
            value = to_text(value)
        params.append(value)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(str(compiled), params)
        while batch := cursor.fetchmany(STREAM_BATCH):
            yield from batch
    finally:
        cursor.close()


def keys_on_flow(conn: Connection, flow: str, keys: Sequence[str]) -> set[str]:
    """The keys among ``keys`` that the flow has any delivery for, whatever the period."""
    found: set[str] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        rows = conn.execute(
            select(deliveries.c.key)
            .where(deliveries.c.flow == flow, deliveries.c.key.in_(chunk))
            .distinct()
        )
        found.update(row[0] for row in rows)
    return found


def delivery_states(conn: Connection, ids: Sequence[int]) -> list[Any]:
    """(id, flow, system, status, key) of these deliveries."""
    rows: list[Any] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows.extend(
            conn.execute(
                select(
                    deliveries.c.id,
                    deliveries.c.flow,
                    deliveries.c.system,
                    deliveries.c.status,
                    deliveries.c.key,
                ).where(deliveries.c.id.in_(chunk))
            )
        )
    return rows


# -- runs ---------------------------------------------------------------------------------------


def insert_run(conn: Connection, values: dict[str, Any]) -> int:
    result = conn.execute(insert(reconcile_runs).values(**values))
    assert result.inserted_primary_key is not None
    return int(result.inserted_primary_key[0])


def insert_items(conn: Connection, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 5000):
        conn.execute(insert(reconcile_items), rows[start : start + 5000])


def list_runs(conn: Connection, flow: str | None, before: int | None, limit: int) -> list[Any]:
    query = select(reconcile_runs).order_by(reconcile_runs.c.id.desc()).limit(limit)
    if flow:
        query = query.where(reconcile_runs.c.flow == flow)
    if before is not None:
        query = query.where(reconcile_runs.c.id < before)
    return list(conn.execute(query))


def get_run(conn: Connection, run_id: int) -> Any:
    return conn.execute(select(reconcile_runs).where(reconcile_runs.c.id == run_id)).first()


def list_items(
    conn: Connection, run_id: int, category: str | None, after: int | None, limit: int | None
) -> list[Any]:
    query = (
        select(reconcile_items)
        .where(reconcile_items.c.run_id == run_id)
        .order_by(reconcile_items.c.id)
    )
    if category:
        query = query.where(reconcile_items.c.category == category)
    if after is not None:
        query = query.where(reconcile_items.c.id > after)
    if limit is not None:
        query = query.limit(limit)
    return list(conn.execute(query))
