"""The audit trail of manual actions."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, or_, select

from interlink.store.schema import audit


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
