"""Named statements of the contracts capability: versions, replay samples, scenario counts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select

from interlink.features.contracts.tables import contract_versions
from interlink.model import HoldReason, Status
from interlink.store.schema import deliveries, documents


def latest_versions(conn: Connection) -> dict[str, tuple[int, str]]:
    """document → (newest version, its hash)."""
    newest = (
        select(contract_versions.c.document, func.max(contract_versions.c.version).label("v"))
        .group_by(contract_versions.c.document)
        .subquery()
    )
    rows = conn.execute(
        select(
            contract_versions.c.document, contract_versions.c.version, contract_versions.c.hash
        ).join(
            newest,
            (newest.c.document == contract_versions.c.document)
            & (newest.c.v == contract_versions.c.version),
        )
    )
    return {row.document: (row.version, row.hash) for row in rows}


def current_version(conn: Connection, document: str) -> Any:
    return conn.execute(
        select(contract_versions)
        .where(contract_versions.c.document == document)
        .order_by(contract_versions.c.version.desc())
        .limit(1)
    ).first()


def versions(conn: Connection, document: str) -> list[Any]:
    return list(
        conn.execute(
            select(contract_versions)
            .where(contract_versions.c.document == document)
            .order_by(contract_versions.c.version)
        )
    )


def current_schemas(conn: Connection, names: Sequence[str]) -> dict[str, Any]:
    """document → its newest version row, for the given documents."""
    found: dict[str, Any] = {}
    for name in names:
        row = current_version(conn, name)
        if row is not None:
            found[name] = row
    return found


def insert_version(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(contract_versions).values(**values))


def recent_payloads(conn: Connection, document: str, limit: int) -> list[Any]:
    """The newest ``limit`` stored documents of a type: (id, key, payload)."""
    return list(
        conn.execute(
            select(documents.c.id, documents.c.key, documents.c.payload)
            .where(documents.c.type == document)
            # Ids are ULIDs, sorted by arrival: the primary key walks back from the newest.
            .order_by(documents.c.id.desc())
            .limit(limit)
        )
    )


def _period(column: Any, since: datetime | None, until: datetime | None) -> list[Any]:
    conditions = []
    if since is not None:
        conditions.append(column >= since)
    if until is not None:
        conditions.append(column < until)
    return conditions


def scenario_counts(conn: Connection, since: datetime | None, until: datetime | None) -> list[Any]:
    """(type, scenario, count) of documents received in the period."""
    return list(
        conn.execute(
            select(documents.c.type, documents.c.scenario, func.count().label("n"))
            .where(*_period(documents.c.received_at, since, until))
            .group_by(documents.c.type, documents.c.scenario)
        )
    )


def flow_scenario_counts(
    conn: Connection, since: datetime | None, until: datetime | None, flow: str | None
) -> list[Any]:
    """(flow, scenario, count) of deliveries of documents received in the period."""
    conditions = _period(documents.c.received_at, since, until)
    if flow is not None:
        conditions.append(deliveries.c.flow == flow)
    return list(
        conn.execute(
            select(deliveries.c.flow, documents.c.scenario, func.count().label("n"))
            .join(documents, documents.c.id == deliveries.c.document_id)
            .where(*conditions)
            .group_by(deliveries.c.flow, documents.c.scenario)
        )
    )


def unmapped_payloads(
    conn: Connection, document: str, since: datetime | None, until: datetime | None, limit: int
) -> list[Any]:
    return list(
        conn.execute(
            select(documents.c.id, documents.c.key, documents.c.payload)
            .where(
                documents.c.type == document,
                documents.c.scenario.is_(None),
                *_period(documents.c.received_at, since, until),
            )
            .order_by(documents.c.received_at.desc())
            .limit(limit)
        )
    )


def unmapped_held(conn: Connection, document_id: str | None, flow: str | None) -> list[Any]:
    """Deliveries held for an unmapped scenario: (id, flow, system, document_id, key)."""
    conditions = [deliveries.c.status == Status.HELD]
    conditions.append(deliveries.c.reason == HoldReason.UNMAPPED_SCENARIO)
    if document_id is not None:
        conditions.append(deliveries.c.document_id == document_id)
    if flow is not None:
        conditions.append(deliveries.c.flow == flow)
    return list(
        conn.execute(
            select(
                deliveries.c.id,
                deliveries.c.flow,
                deliveries.c.system,
                deliveries.c.document_id,
                deliveries.c.key,
            )
            .where(*conditions)
            .order_by(deliveries.c.id)
        )
    )
