"""Circuit breaker state per system, and flow holds (pause, auth)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from interlink.model import CircuitState
from interlink.store.schema import circuits, flow_state


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
