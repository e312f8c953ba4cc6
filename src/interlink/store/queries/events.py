"""Events (circuit changes, rejections, holds), and the LISTEN/NOTIFY channel that wakes workers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select

from interlink.store.schema import events


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


def notify_registry(conn: Connection) -> None:
    """Ask the other workers to look at the registry now (a worker joined, or wants more of
    its fair part): sent at commit, on the channel they listen to for work."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_notify(WORK_CHANNEL, REGISTRY_NEWS)))


WORK_CHANNEL = "interlink_work"


REGISTRY_NEWS = "registry"  # the payload of a notification about the worker registry


def notify_work(conn: Connection) -> None:
    """Wake idle workers in other processes (PostgreSQL LISTEN/NOTIFY; sent at commit)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"NOTIFY {WORK_CHANNEL}")
