"""Retention: documents old enough and fully delivered, counted, and deleted with their
deliveries and attempts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, select

from interlink.model import Status
from interlink.store.queries.batches import chunks, member
from interlink.store.schema import attempts, deliveries, documents


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
    for chunk in chunks(document_ids, 500):
        ids = select(deliveries.c.id).where(member(conn, deliveries.c.document_id, chunk))
        removed[2] += conn.execute(delete(attempts).where(attempts.c.delivery_id.in_(ids))).rowcount
        removed[1] += conn.execute(
            delete(deliveries).where(member(conn, deliveries.c.document_id, chunk))
        ).rowcount
        removed[0] += conn.execute(
            delete(documents).where(member(conn, documents.c.id, chunk))
        ).rowcount
    return removed[0], removed[1], removed[2]
