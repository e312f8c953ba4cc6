"""Rollout stages: show and change a flow's stage, promote it through the gate, and route new
documents by stage at intake.

:class:`Rollout` is the service the API, the CLI and the console call. Its
:meth:`~Rollout.route_source` is intake's hook: per flow, whether a new document goes out,
waits ``held: rollout``, is skipped, or is taken by the fallback flow (:mod:`.rules`). A change
of stage is written with its audit entry and a ``rollout_stage`` event, and releases the
deliveries held ``rollout`` that the new stage lets go, through the hub's requeue (the same
placement as a re-push: ordered flows keep each key's revisions in order, flow and system
holds apply). Its :meth:`~Rollout.housekeeper` lets go what a full flow still holds: a
document another process held in the moment of a promotion (its read of the stage came
before the promotion's commit).

The run-time stage lives in the ``rollout_stages`` table and overrides the topology's
``stage``. Only ``promote`` takes a flow to ``full``: ``set`` moves it to ``pilot`` or ``off``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from interlink.config import ROLLOUT_STAGES, RolloutSettings
from interlink.errors import Conflict, InputError, NotFound
from interlink.features.rollout import queries, rules
from interlink.features.rollout.metrics import RolloutCollector
from interlink.hooks import FlowRoute
from interlink.model import HoldReason, Status
from interlink.store.queries import audit, events, transitions

if TYPE_CHECKING:
    from interlink.service import Hub

NAME = "rollout"
# How often the housekeeper looks for deliveries held on a flow that is full.
SWEEP = timedelta(seconds=5)

log = logging.getLogger(__name__)


class Rollout:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.settings: dict[str, RolloutSettings] = {
            name: flow.rollout
            for name, flow in hub.topology.flows.items()
            if flow.rollout is not None
        }
        self.pilots = {name: rules.Pilot.of(s) for name, s in self.settings.items()}
        self._next_sweep: datetime | None = None

    # -- hooks --------------------------------------------------------------------------------

    def route_source(self, conn: Connection, now: datetime) -> Mapping[str, FlowRoute]:
        """Intake's routes: one read of the stages per write."""
        return rules.routes(self.settings, self._stages(conn), self.pilots)

    def housekeeper(self, conn: Connection, now: datetime) -> None:
        """Every :data:`SWEEP` of clock time: deliveries still held ``rollout`` on a flow that
        is full go out. Costs a read of the stages table, and of the backlog index when some
        flow is full."""
        if self._next_sweep is not None and self._next_sweep > now >= self._next_sweep - SWEEP:
            return
        self._next_sweep = now + SWEEP
        full = [flow for flow, stage in self._stages(conn).items() if stage == "full"]
        for flow in queries.flows_holding_outside(conn, full) if full else []:
            try:
                with conn.begin_nested():
                    self._release(conn, flow, "full", now)
            except Exception:  # never stop the engine's claim it runs in
                log.exception("rollout of %s: releasing held deliveries failed", flow)

    def flow_status(self) -> dict[str, dict[str, Any]]:
        """flow → ``{"rollout": {"stage", "share", "outside"}}`` for the hub's status."""
        stages = self.stages()
        return {
            flow: {"rollout": {"stage": stages[flow], "share": s.share, "outside": _outside(s)}}
            for flow, s in self.settings.items()
        }

    # -- reading ------------------------------------------------------------------------------

    def stages(self) -> dict[str, str]:
        """flow → its stage now, for every rolled-out flow."""
        return self.hub.store.read_sync(self._stages)

    def _stages(self, conn: Connection) -> dict[str, str]:
        rows = queries.stages(conn)
        return {
            flow: _stage_of(rows.get(flow), settings) for flow, settings in self.settings.items()
        }

    def _settings(self, flow: str) -> RolloutSettings:
        self.hub.check_flow(flow)
        settings = self.settings.get(flow)
        if settings is None:
            rolled = ", ".join(sorted(self.settings)) or "none"
            raise NotFound(
                f"flow {flow!r} has no rollout: block in the topology (rolled out: {rolled})"
            )
        return settings

    def show(self, flow: str | None = None) -> list[dict[str, Any]]:
        """Every rolled-out flow's stage (or one flow's), as the topology and run time say."""
        names = [flow] if flow is not None else sorted(self.settings)
        for name in names:
            self._settings(name)
        rows = self.hub.store.read_sync(queries.stages)
        return [self._entry(name, rows.get(name)) for name in names]

    def _entry(self, flow: str, row: Any) -> dict[str, Any]:
        settings = self.settings[flow]
        return {
            "flow": flow,
            "stage": _stage_of(row, settings),
            "initial": settings.stage,
            "since": row.since.isoformat() if row is not None else None,
            "by": row.actor if row is not None else None,
            "note": row.note if row is not None else None,
            "when": settings.when,
            "share": settings.share,
            "outside": _outside(settings),
            "fallback": settings.fallback,
        }

    async def record(self, flow: str) -> dict[str, Any]:
        """The pilot's record and the gate's verdict on it (see docs/rollout.md)."""
        settings = self._settings(flow)
        now = self.hub.clock.now()

        def read(conn: Connection) -> tuple[Any, list[Any], list[Any], int]:
            row = queries.stages(conn).get(flow)
            since = row.since if row is not None and row.stage == "pilot" else None
            fallback = queries.counts(conn, settings.fallback, since) if settings.fallback else []
            return (
                row,
                queries.counts(conn, flow, since),
                fallback,
                queries.skipped(conn, flow, since),
            )

        row, counts, fallback_counts, skipped = await asyncio.to_thread(
            self.hub.store.read_sync, read
        )
        stage = _stage_of(row, settings)
        by_status: dict[str, int] = {}
        held: dict[str, int] = {}
        # The pilot began when the stage was set to pilot, else with the flow's first delivery.
        started = row.since if row is not None and row.stage == "pilot" else None
        if started is None:
            started = min((oldest for *_, oldest in counts if oldest is not None), default=None)
        held_since = None
        for status, reason, count, oldest in counts:
            if status == Status.HELD:
                held[reason] = held.get(reason, 0) + count
                if reason == HoldReason.ROLLOUT:
                    held_since = oldest
            else:
                by_status[status] = by_status.get(status, 0) + count
        record: dict[str, Any] = {
            "flow": flow,
            "stage": stage,
            "pilot_since": started.isoformat() if started is not None else None,
            "pilot_seconds": (now - started).total_seconds() if started is not None else None,
            "delivered": by_status.get(Status.DELIVERED, 0),
            "dead": by_status.get(Status.DEAD, 0),
            "pending": by_status.get(Status.PENDING, 0) + by_status.get(Status.IN_FLIGHT, 0),
            "held": held,
            "outside": {
                "mode": _outside(settings),
                "held": held.get(HoldReason.ROLLOUT, 0),
                "held_since": held_since.isoformat() if held_since is not None else None,
                "held_seconds": (now - held_since).total_seconds() if held_since else None,
                "skipped": skipped,
                "fallback": (
                    {
                        "flow": settings.fallback,
                        "deliveries": sum(c for _, _, c, _ in fallback_counts),
                    }
                    if settings.fallback
                    else None
                ),
            },
            "open_incidents": self._open_incidents(flow),
            "reconciliation": self._last_reconciliation(flow),
            "readiness": await self._readiness(flow),
        }
        checks = rules.gate(settings.gate, record)
        record["gate"] = {
            "passed": all(c.passed for c in checks),
            "rules": settings.gate.model_dump(mode="json"),
            "checks": [c.to_json() for c in checks],
        }
        return record

    def _open_incidents(self, flow: str) -> list[dict[str, Any]]:
        service = self.hub.capabilities.get("incidents")
        if service is None:
            return []
        from interlink.features.incidents.service import IncidentFilter

        found = []
        for status in ("open", "investigating"):
            for item in service.search(IncidentFilter(status=status, flow=flow), limit=20):
                found.append(
                    {k: item.get(k) for k in ("id", "title", "status", "severity", "registered_at")}
                )
        return sorted(found, key=lambda i: i["id"])

    def _last_reconciliation(self, flow: str) -> dict[str, Any] | None:
        service = self.hub.capabilities.get("reconcile")
        if service is None:
            return None
        runs = service.runs(flow, limit=1)
        if not runs:
            return None
        run = runs[0]
        return {
            "id": run["id"],
            "finished_at": run.get("finished_at"),
            "complete": run.get("complete"),
            "categories": run.get("categories"),
            "clean": rules.reconciled(run),
        }

    async def _readiness(self, flow: str) -> dict[str, Any] | None:
        service = self.hub.capabilities.get("readiness")
        if service is None:
            return None
        found = await service.check(flow)
        entry = found["flows"][0]
        gaps = [i.get("item") for i in entry["items"] if i.get("status") != "passed"]
        return {"passed": entry["passed"], "gaps": gaps}

    # -- changing -----------------------------------------------------------------------------

    def set(self, flow: str, stage: str, actor: str, note: str = "") -> dict[str, Any]:
        """Move a flow to ``pilot`` or ``off``; ``full`` goes through :meth:`promote`."""
        settings = self._settings(flow)
        if stage not in ROLLOUT_STAGES:
            raise InputError(f"unknown stage {stage!r}; use one of {', '.join(ROLLOUT_STAGES)}")
        if stage == "full":
            raise InputError(
                f"a flow goes full through 'interlink rollout promote {flow}', which checks "
                "the pilot's record first"
            )
        if stage == "pilot" and not settings.has_filter:
            raise InputError(
                f"flow {flow!r} has no pilot filter: give its rollout 'when' or 'share' first"
            )
        return self._change(flow, stage, actor, note, "rollout_set", {})

    async def promote(
        self, flow: str, actor: str, force: bool = False, reason: str | None = None
    ) -> dict[str, Any]:
        """Take a flow to ``full`` if the pilot's record passes the gate (or ``force`` with a
        ``reason``): every document goes out, the held ones first, in order."""
        self._settings(flow)
        if force and not (reason or "").strip():
            raise InputError("--force needs --reason: why the gate is overridden, for the audit")
        record = await self.record(flow)
        if record["stage"] == "full":
            raise InputError(f"flow {flow!r} is already full")
        failed = [c["name"] for c in record["gate"]["checks"] if not c["passed"]]
        if failed and not force:
            raise Conflict(
                f"the pilot of {flow!r} does not pass the gate ({', '.join(failed)}); "
                "promote with --force --reason to override",
                record=record,
            )
        summary = {k: record[k] for k in ("delivered", "dead", "pending", "held", "pilot_since")}
        detail = {"forced": bool(force), "failed": failed, "record": summary}
        result = await asyncio.to_thread(
            self._change, flow, "full", actor, (reason or "").strip(), "rollout_promote", detail
        )
        result["forced"] = bool(force)
        result["record"] = record
        return result

    def _change(
        self, flow: str, stage: str, actor: str, note: str, action: str, detail: dict[str, Any]
    ) -> dict[str, Any]:
        now = self.hub.clock.now()
        target = self.hub.topology.flows[flow].target

        def write(conn: Connection) -> tuple[str, int]:
            rows = queries.stages(conn)
            before = _stage_of(rows.get(flow), self.settings[flow])
            row = rows.get(flow)
            # A pilot that stays a pilot keeps its start: its record is still the same pilot's.
            since = row.since if row is not None and row.stage == stage else now
            queries.set_stage(conn, flow, stage, since, actor, note)
            released = self._release(conn, flow, stage, now)
            change = {"from": before, "to": stage, "note": note, "released": released}
            audit.add_audit(conn, now, actor, action, f"flow:{flow}", {**change, **detail})
            events.add_event(
                conn, now, "rollout_stage", {**change, "by": actor}, system=target, flow=flow
            )
            return before, released

        before, released = self.hub.store.write_sync(write)
        self.hub.wake()
        [entry] = self.show(flow)
        return {**entry, "from": before, "released": released}

    def _release(self, conn: Connection, flow: str, stage: str, now: datetime) -> int:
        """Let go the deliveries held ``rollout`` that ``stage`` puts inside the pilot."""
        pilot = self.pilots[flow]
        rows = [
            r
            for r in queries.held_outside(conn, flow)
            if rules.inside(stage, pilot, r.key, json.loads(r.payload))
        ]
        if not rows:
            return 0
        # A document no scenario matched still waits for a person's decision.
        unmapped = (
            [r.id for r in rows if r.scenario is None]
            if self.hub.topology.flows[flow].require_scenario
            else []
        )
        if unmapped:
            transitions.set_state(conn, unmapped, Status.HELD, HoldReason.UNMAPPED_SCENARIO, now)
        waiting = set(unmapped)
        ready = [(r.id, r.flow, r.system) for r in rows if r.id not in waiting]
        if ready:
            self.hub.requeue(conn, ready, now)
        return len(rows)


def _stage_of(row: Any, settings: RolloutSettings) -> str:
    if row is not None and row.stage in ROLLOUT_STAGES:
        return str(row.stage)
    return settings.stage


def _outside(settings: RolloutSettings) -> str:
    return f"fallback:{settings.fallback}" if settings.fallback else str(settings.outside)


def install(hub: Hub) -> None:
    """Intake's routes and the status's stages, when some flow has a rollout: block (a
    topology without one pays nothing at intake)."""
    service = Rollout(hub)
    hub.capabilities[NAME] = service
    if service.settings:
        hub.hooks.routes.append(service.route_source)
        hub.hooks.flow_status.append(service.flow_status)
        hub.hooks.housekeepers.append(service.housekeeper)
        hub.hooks.collectors.append(RolloutCollector(service))


def rollout(hub: Hub) -> Rollout:
    service: Rollout = hub.capabilities[NAME]
    return service
