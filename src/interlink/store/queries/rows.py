"""Rows of the store → the domain objects of :mod:`interlink.model`."""

from __future__ import annotations

from typing import Any

from interlink.model import Delivery, Document


def to_document(row: Any) -> Document:
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


def to_delivery(row: Any) -> Delivery:
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
