"""The engine's store side: each function runs inside one write.

- :func:`load_holds`: the :class:`~interlink.engine.holds.Holds` snapshot, for every writer.
- :func:`claim`: recover lapsed leases, re-read circuits and holds, release stale holds, and
  lease what is due (probes first).
- :func:`apply`: a :class:`~interlink.engine.planner.Plan` in one write: flows held for their
  credentials, attempts, delivery updates under their lease, holds when a circuit opens or
  closes, circuits saved, blocked successors released, events.
- :func:`give_back`: leased jobs that were never sent, to wherever their holds now say.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from interlink.config import Flow, Topology
from interlink.engine import circuit as breaker
from interlink.engine.circuit import Circuit, CircuitPolicy
from interlink.engine.holds import Holds, Placed, merge_system_holds
from interlink.engine.planner import Job, Plan
from interlink.hooks import HoldSource, Hooks
from interlink.model import CircuitState, Event, HoldReason, Status
from interlink.store.queries import circuits, claims, documents, events, transitions

log = logging.getLogger("interlink.engine")


def load_holds(
    conn: Connection,
    now: datetime,
    sources: Sequence[HoldSource] = (),
    open_circuits: Iterable[str] | None = None,
) -> Holds:
    """The holds as the store has them now. ``open_circuits`` when the caller's view of the
    circuits is newer than the store's (the engine, within the write that saves them)."""
    return Holds(
        flows=circuits.flow_holds(conn),
        sources=merge_system_holds(*(source(conn, now) for source in sources)),
        open=frozenset(circuits.open_circuits(conn) if open_circuits is None else open_circuits),
    )


def load_circuits(conn: Connection) -> dict[str, Circuit]:
    """Every circuit the store has; ``probing`` while some worker's probe is in flight (a dead
    worker's probe comes back with its lease)."""
    probing = claims.probing_systems(conn)
    return {
        row.system: Circuit(
            system=row.system,
            state=CircuitState(row.state),
            failures=row.failures,
            opened_at=row.opened_at,
            next_probe_at=row.next_probe_at,
            probe_interval=timedelta(seconds=row.probe_interval) if row.probe_interval else None,
            probing=row.system in probing,
        )
        for row in circuits.load_circuits(conn)
    }


def open_systems(breakers: Mapping[str, Circuit]) -> set[str]:
    return {system for system, circ in breakers.items() if circ.is_open}


@dataclass
class Claimed:
    """What one claim write found: the jobs, and the circuits and holds it read."""

    jobs: list[Job]
    circuits: dict[str, Circuit]
    holds: Holds


def claim(
    conn: Connection,
    now: datetime,
    *,
    topology: Topology,
    flows: Mapping[str, Flow],
    hooks: Hooks,
    policy: CircuitPolicy,
    lease: timedelta,
    limit: Callable[[Flow], int],
    on_read: Callable[[dict[str, Circuit], Holds], None],
    sweep: bool,
    known: Holds | None = None,
) -> Claimed:
    """Lease what is due: probes for open circuits whose probe is due, then up to
    ``limit(flow)`` per flow (the dispatcher's count), once ``on_read`` has been told the
    circuits and holds this write read.

    With ``known`` (the holds the engine read a moment ago, its open circuits, kept current
    by its own outcomes, among them) the claim only leases: no lapsed leases recovered, no
    housekeepers, no probes. The engine asks for it between full claims when nothing but
    new work changed (``Engine.claim``), so a claim per submission does not re-read what
    cannot have moved.
    """
    if known is None:
        claims.recover_expired_leases(conn, now)
        breakers = load_circuits(conn)
        for housekeeper in hooks.housekeepers:
            housekeeper(conn, now)
        holds = load_holds(conn, now, hooks.hold_sources, open_systems(breakers))
        if sweep:
            _sweep(conn, holds, flows, now)
    else:
        breakers, holds = {}, known

    def lease_for(system: str) -> timedelta:
        return lease + topology.systems[system].timeout

    jobs: list[Job] = []
    for system, circ in breakers.items():
        if system in holds.sources:
            continue  # no probes during a maintenance window
        if breaker.probe_due(circ, now) and system in topology.systems:
            rows = claims.claim_probe(conn, system, now, now + lease_for(system))
            if rows:
                breaker.start_probe(circ)
                circuits.save_circuit(conn, circuit_row(circ, now))
                jobs.extend(_job(flows, row, probe=True) for row in rows)
            else:
                # Nothing held to probe with: try again after the interval.
                circ.next_probe_at = now + (circ.probe_interval or policy.probe_interval)
    if known is None:
        on_read(breakers, holds)
    for name, flow in flows.items():
        if holds.holds_flow(name, flow.target):
            continue
        n = limit(flow)
        if n <= 0:
            continue
        rows = claims.claim(conn, name, now, now + lease_for(flow.target), n)
        jobs.extend(_job(flows, row, probe=False) for row in rows)
    unread = [job for job in jobs if not job.type]
    if unread:
        found = documents.payloads(conn, [j.document_id for j in unread])
        for job in unread:
            doc = found[job.document_id]
            job.type = doc.type
            job.body = doc.payload.encode()
            job.traceparent = doc.traceparent
    return Claimed(jobs, breakers, holds)


def _job(flows: Mapping[str, Flow], row: Any, probe: bool) -> Job:
    """A job from a claimed row; its document too when the claim read it (PostgreSQL)."""
    payload = getattr(row, "payload", None)
    return Job(
        id=row.id,
        document_id=row.document_id,
        flow=flows[row.flow],
        key=row.key,
        revision=row.revision,
        attempts=row.attempts,
        failures=row.failures,
        first_failure_at=row.first_failure_at,
        lease_until=row.lease_until,
        probe=probe,
        type=row.type if payload is not None else "",
        body=payload.encode() if payload is not None else b"",
        traceparent=getattr(row, "traceparent", None),
    )


def _sweep(conn: Connection, holds: Holds, flows: Collection[str], now: datetime) -> None:
    """Release holds whose reason is gone (see queries.stale_holds)."""
    rows = [
        row
        for row in transitions.stale_holds(
            conn, set(holds.open), dict(holds.flows), dict(holds.sources)
        )
        if row.flow in flows
    ]
    stale = {row.id: row.reason for row in rows}
    for (to_status, to_reason), ids in holds.place_rows(rows).items():
        ids = [i for i in ids if stale[i] != to_reason]
        if ids:
            log.info("released %d deliveries left %s", len(ids), "held")
            transitions.set_state(conn, ids, to_status, to_reason, now)


def apply(
    conn: Connection,
    plan: Plan,
    now: datetime,
    *,
    topology: Topology,
    hooks: Hooks,
    breakers: Mapping[str, Circuit],
) -> None:
    """Write ``plan``. ``breakers`` (the circuits by system) is the engine's view after the
    plan (it may be newer than the store's, which this write brings up to date)."""
    holds = load_holds(conn, now, hooks.hold_sources, open_systems(breakers))
    for flow_name, auth_detail in plan.auth_flows.items():
        circuits.set_flow_hold(conn, flow_name, HoldReason.AUTH, now, "engine", auth_detail)
        transitions.move(
            conn,
            now,
            to_status=Status.HELD,
            to_reason=HoldReason.AUTH,
            status=Status.PENDING,
            flow=flow_name,
        )
        plan.events.append(
            _event("flow_held_auth", {"detail": auth_detail}, topology.flows[flow_name])
        )
        holds = holds.with_flow_hold(flow_name, HoldReason.AUTH)
    # A retry on a flow paused meanwhile, or to a system now in a window, waits there. Not for
    # its circuit: the plan held what an open circuit holds, and the opening holds the rest.
    retry_holds = holds.with_open(())
    for update in plan.updates:
        if update.status == Status.PENDING:
            status, reason = retry_holds.place(update.flow, update.system)
            if reason is not None:
                update.status, update.reason = status, reason
    claims.insert_attempts(conn, plan.attempts)
    claims.record_outcomes(conn, plan.updates)
    # One batch may open, close and reopen a circuit: act on where each one ended up.
    for system in dict.fromkeys(plan.changed):
        if system in holds.open:
            transitions.move(
                conn,
                now,
                to_status=Status.HELD,
                to_reason=HoldReason.DOWNSTREAM_DOWN,
                status=Status.PENDING,
                system=system,
            )
        else:
            release_system(conn, topology, holds, system, HoldReason.DOWNSTREAM_DOWN, now)
    for system in plan.saved:
        circuits.save_circuit(conn, circuit_row(breakers[system], now))
    if plan.delivered_keys:
        rows = claims.next_blocked(conn, sorted(plan.delivered_keys))
        for (to_status, to_reason), ids in holds.place_rows(rows).items():
            transitions.set_state(conn, ids, to_status, to_reason, now)
    for e in plan.events:
        events.add_event(conn, now, e.kind, e.detail, e.system, e.flow)


def _event(kind: str, detail: dict[str, Any], flow: Flow) -> Event:
    return Event(kind, detail, system=flow.target, flow=flow.name)


def release_system(
    conn: Connection,
    topology: Topology,
    holds: Holds,
    system: str,
    reason: HoldReason,
    now: datetime,
) -> None:
    """A system's hold ``reason`` is over (its circuit closed, its window ended): its
    deliveries held for it go wherever their holds now say."""
    for flow in topology.flows_to(system):
        status, to_reason = holds.place(flow.name, system)
        transitions.move(
            conn,
            now,
            to_status=status,
            to_reason=to_reason,
            status=Status.HELD,
            reasons=[reason],
            flow=flow.name,
        )


def give_back(conn: Connection, jobs: list[Job], holds: Holds, now: datetime) -> None:
    """Leased, unsent jobs go to wherever their flow or system now says; a probe stays held
    for its circuit."""
    probe_holds = holds.with_open({*holds.open, *(job.flow.target for job in jobs if job.probe)})
    groups = holds.place_rows(Placed(j.id, j.flow.name, j.flow.target) for j in jobs if not j.probe)
    for key, ids in probe_holds.place_rows(
        Placed(j.id, j.flow.name, j.flow.target) for j in jobs if j.probe
    ).items():
        groups[key].extend(ids)
    for (to_status, to_reason), ids in groups.items():
        transitions.set_state(conn, ids, to_status, to_reason, now, leased_only=True)


def circuit_row(circ: Circuit, now: datetime) -> dict[str, Any]:
    return {
        "system": circ.system,
        "state": str(circ.state),
        "failures": circ.failures,
        "opened_at": circ.opened_at,
        "next_probe_at": circ.next_probe_at,
        "probe_interval": circ.probe_interval.total_seconds() if circ.probe_interval else None,
        "probing": circ.probing,
        "updated_at": now,
    }
