"""The record of drill runs, read by the API (:mod:`.api`); :mod:`.run` writes it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from interlink.errors import NotFound
from interlink.features.drills import queries

if TYPE_CHECKING:
    from interlink.service import Hub

NAME = "drills"


class Drills:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def runs(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = self.hub.store.read_sync(lambda conn: queries.list_runs(conn, min(limit, 500)))
        return [_run_json(row) for row in rows]

    def run(self, run_id: int) -> dict[str, Any]:
        row = self.hub.store.read_sync(lambda conn: queries.get_run(conn, run_id))
        if row is None:
            raise NotFound(f"no drill run {run_id}")
        return {**_run_json(row), "report": json.loads(row.report)}


def _run_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "file": row.file,
        "started": row.started.isoformat(),
        "finished": row.finished.isoformat(),
        "passed": bool(row.passed),
        "flows": [f for f in row.flows.split(",") if f],
        "outages": [s for s in row.outages.split(",") if s],
    }


def install(hub: Hub) -> None:
    hub.capabilities[NAME] = Drills(hub)


def drills(hub: Hub) -> Drills:
    service: Drills = hub.capabilities[NAME]
    return service
