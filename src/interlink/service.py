"""The service layer: the one place the API, the console and the CLI call.

:class:`Hub` ties a topology to its store, intake and engine, and carries out every read and
every manual action (re-push, pause, resume) with its audit record. No rule lives in the shells
above it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any, Protocol

from sqlalchemy import Connection

from interlink.clock import Clock, SystemClock
from interlink.config import Topology
from interlink.engine.applier import load_holds
from interlink.engine.holds import Placed
from interlink.engine.loop import Engine
from interlink.errors import InputError, NotFound
from interlink.hooks import Hooks
from interlink.intake import Intake
from interlink.model import CircuitState, DeadReason, Delivery, Document, HoldReason, Status
from interlink.store import console
from interlink.store.db import Store, open_store
from interlink.store.queries import (
    audit,
    circuits,
    console_reads,
    deliveries,
    documents,
    events,
    retention,
    transitions,
)
from interlink.times import parse_time
from interlink.transports.base import Transport

REPUSHABLE = (Status.DEAD, Status.DELIVERED)
RELEASABLE = (HoldReason.PAUSED, HoldReason.AUTH)
# The attempts that opened a circuit started a little before it opened.
DOWN_LOOKBACK = timedelta(minutes=10)


@dataclass(frozen=True)
class DeliveryFilter:
    flow: str | None = None
    status: str | None = None
    reason: str | None = None
    key: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def conditions(self) -> list[Any]:
        return deliveries.delivery_filter(
            flow=self.flow,
            status=self.status,
            reason=self.reason,
            key=self.key,
            since=self.since,
            until=self.until,
        )

    def fields(self) -> dict[str, Any]:
        return dict(vars(self))

    def to_json(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in vars(self).items()}

    @classmethod
    def parse(
        cls,
        tz: tzinfo,
        *,
        flow: str | None = None,
        status: str | None = None,
        reason: str | None = None,
        key: str | None = None,
        since: str | None = None,
        until: str | None = None,
        option_prefix: str = "",
    ) -> DeliveryFilter:
        """A filter from what people type (the API's query, the CLI's options)."""
        return cls(
            flow=flow,
            status=status,
            reason=reason,
            key=key,
            since=parse_time(since, tz, f"{option_prefix}since") if since else None,
            until=parse_time(until, tz, f"{option_prefix}until") if until else None,
        )


class FeatureLike(Protocol):
    """What a hub installs: a feature with a name that adds its service and hooks
    (:class:`interlink.features.registry.Feature`; the core does not import it)."""

    @property
    def name(self) -> str: ...

    @property
    def install(self) -> Any: ...


class Hub:
    def __init__(
        self,
        topology: Topology,
        store: Store | None = None,
        clock: Clock | None = None,
        transport: Transport | None = None,
        features: Sequence[FeatureLike] = (),
    ) -> None:
        self.topology = topology
        self.store = store or open_store(topology.database_url())
        self.clock = clock or SystemClock()
        self._transport = transport
        self.hooks = Hooks()
        self.intake = Intake(topology, self.store, self.clock, self.hooks)
        self._engine: Engine | None = None
        # The features given (the shells give interlink.features.registry.FEATURES), and
        # their services by name; a feature not given is "not installed".
        self.features: tuple[FeatureLike, ...] = tuple(features)
        self.capabilities: dict[str, Any] = {}
        for feature in self.features:
            feature.install(self)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            if self._transport is None:
                from interlink.transports import default_transport

                self._transport = default_transport()
            self._engine = Engine(
                self.topology, self.store, self.clock, self._transport, hooks=self.hooks
            )
        return self._engine

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispatcher.close_transports()  # the brokers' connections
        if self._transport is not None:
            await self._transport.close()
        self.store.close()

    # -- checks -----------------------------------------------------------------------------

    def check_flow(self, flow: str | None) -> None:
        if flow is not None and flow not in self.topology.flows:
            known = ", ".join(sorted(self.topology.flows)) or "none"
            raise NotFound(f"unknown flow {flow!r} (known: {known})")

    def check_filter(self, f: DeliveryFilter) -> None:
        self.check_flow(f.flow)
        if f.status is not None and f.status not in set(Status):
            raise InputError(
                f"unknown status {f.status!r}; use one of {', '.join(s.value for s in Status)}"
            )
        known_reasons = {r.value for r in HoldReason} | {r.value for r in DeadReason}
        if f.reason is not None and f.reason not in known_reasons:
            raise InputError(
                f"unknown reason {f.reason!r}; use one of {', '.join(sorted(known_reasons))}"
            )

    # -- reads ------------------------------------------------------------------------------
    # ``source``: read as that system, which sees only the documents it submitted and their
    # deliveries; another's answer exactly as a missing one would, so existence is not leaked.

    def document(self, document_id: str, source: str | None = None) -> Document:
        def read(conn: Connection) -> Document | None:
            doc = documents.get_document(conn, document_id)
            if doc is not None and source is not None and doc.source != source:
                return None
            if doc is not None:
                self._attach(conn, [doc])
            return doc

        doc = self.store.read_sync(read)
        if doc is None:
            raise NotFound(f"no document {document_id!r}")
        return doc

    def documents(
        self, key: str, type_: str | None = None, source: str | None = None
    ) -> list[Document]:
        def read(conn: Connection) -> list[Document]:
            docs = documents.find_documents(conn, key, type_, source=source)
            self._attach(conn, docs)
            return docs

        return self.store.read_sync(read)

    def _attach(self, conn: Connection, docs: list[Document]) -> None:
        found = deliveries.deliveries_of(conn, [d.id for d in docs])
        attempts = deliveries.attempts_of(conn, [d.id for d in found])
        by_doc: dict[str, list[Delivery]] = defaultdict(list)
        for d in found:
            d.attempt_log = attempts.get(d.id, [])
            by_doc[d.document_id].append(d)
        for doc in docs:
            doc.deliveries = by_doc[doc.id]

    def delivery(self, delivery_id: int, source: str | None = None) -> Delivery:
        def read(conn: Connection) -> Delivery | None:
            d = deliveries.get_delivery(conn, delivery_id)
            mine = (
                source is None
                or d is None
                or documents.sources_of(conn, [d.document_id]) == {d.document_id: source}
            )
            if not mine:
                return None
            if d is not None:
                d.attempt_log = deliveries.attempts_of(conn, [d.id]).get(d.id, [])
            return d

        found = self.store.read_sync(read)
        if found is None:
            raise NotFound(f"no delivery {delivery_id}")
        return found

    def deliveries(
        self,
        f: DeliveryFilter,
        before: int | None = None,
        limit: int = 100,
        source: str | None = None,
    ) -> list[Delivery]:
        self.check_filter(f)
        limit = max(1, min(limit, 1000))
        if source is None:
            return self.store.read_sync(
                lambda conn: deliveries.list_deliveries(
                    conn, before=before, limit=limit, **f.fields()
                )
            )
        # A system's deliveries are those on the flows from it (intake fans a document out to
        # its source's flows only): one page per flow, merged, is the page over all of them.
        flows = [
            name
            for name, flow in self.topology.flows.items()
            if flow.source == source and f.flow in (None, name)
        ]

        def read(conn: Connection) -> list[Delivery]:
            ids: list[int] = []
            for flow in flows:
                fields = {**f.fields(), "flow": flow}
                ids.extend(deliveries.page_delivery_ids(conn, before=before, limit=limit, **fields))
            found = deliveries.deliveries_by_id(conn, sorted(ids, reverse=True)[:limit])
            # The document's own source decides, should a flow's `from` have been changed.
            sources = documents.sources_of(conn, [d.document_id for d in found])
            return [d for d in found if sources.get(d.document_id) == source]

        return self.store.read_sync(read)

    def status(self) -> dict[str, Any]:
        def read(conn: Connection) -> tuple[list[Any], list[Any], list[Any]]:
            return (
                deliveries.counts(conn),
                circuits.load_circuits(conn),
                circuits.flow_hold_rows(conn),
            )

        counts, breakers, holds = self.store.read_sync(read)
        flows: dict[str, dict[str, Any]] = {}
        for name, flow in self.topology.flows.items():
            flows[name] = {
                "from": flow.source,
                "to": flow.target,
                "document": flow.document,
                "hold": None,
                "pending": 0,
                "in_flight": 0,
                "held": {},
                "delivered": 0,
                "dead": 0,
            }
        for flow_name, status, reason, count in counts:
            entry = flows.get(flow_name)
            if entry is None:
                continue  # a flow removed from the topology
            if status == Status.HELD:
                entry["held"][reason] = entry["held"].get(reason, 0) + count
            else:
                entry[status] = entry.get(status, 0) + count
        for row in holds:
            if row.flow in flows and row.hold:
                flows[row.flow]["hold"] = {
                    "reason": row.hold,
                    "since": row.since.isoformat() if row.since else None,
                    "by": row.actor,
                    "note": row.note,
                }
        # Features add fields to a flow's entry by hook (a rollout's stage and share).
        for extra in self.hooks.flow_status:
            for flow_name, fields in extra().items():
                if flow_name in flows:
                    flows[flow_name].update(fields)
        by_system = {row.system: row for row in breakers}
        # A feature that opens windows on systems (maintenance) reports them by hook.
        open_windows: dict[str, Any] = {}
        for source in self.hooks.system_windows:
            open_windows.update(source())
        systems: dict[str, Any] = {}
        for name in self.topology.systems:
            row = by_system.get(name)
            if row is None or row.state != CircuitState.OPEN:
                systems[name] = {"circuit": "closed", "opened_at": None, "next_probe_at": None}
            else:
                systems[name] = {
                    "circuit": "open",
                    "opened_at": row.opened_at.isoformat() if row.opened_at else None,
                    "next_probe_at": row.next_probe_at.isoformat() if row.next_probe_at else None,
                }
            systems[name]["window"] = open_windows.get(name)
            # Nothing is sent to a system that is only a source: its "closed" means no breaker.
            systems[name]["role"] = self.topology.role(name)
        found: dict[str, Any] = {"flows": flows, "systems": systems}
        # Features add top-level sections by hook (each source's lag); never over these two.
        for section in self.hooks.status_sections:
            for key, value in section().items():
                found.setdefault(key, value)
        return found

    def flow_hold(self, flow: str) -> Any | None:
        """The flow's hold row (``hold``, ``note``, ``actor``, ``since``) while it is held."""
        rows = self.store.read_sync(circuits.flow_hold_rows)
        return next((r for r in rows if r.flow == flow and r.hold), None)

    def hourly_outcomes(self, flow: str, since: datetime) -> dict[datetime, dict[str, int]]:
        """{hour (UTC): {outcome: attempts}} of ``flow``'s attempts since ``since``."""
        return self.store.read_sync(lambda conn: console.hourly_outcomes(conn, flow, since))

    def delivered_since(self, since: datetime) -> dict[str, int]:
        """{flow: deliveries completed since ``since``}."""
        return self.store.read_sync(lambda conn: console.delivered_since(conn, since))

    def count_deliveries(self, f: DeliveryFilter) -> int:
        """How many deliveries match ``f``: a filtered list's total."""
        self.check_filter(f)
        return self.store.read_sync(lambda conn: console_reads.count_matching(conn, f.conditions()))

    def reasons(self, flow: str) -> dict[str, dict[str, int]]:
        """{status: {reason ("" for none): deliveries}} of ``flow``'s deliveries that are not
        delivered: what is stuck and why, in numbers (18 blocked and 182 downstream_down, not
        one word)."""
        self.check_flow(flow)
        found: dict[str, dict[str, int]] = defaultdict(dict)
        rows = self.store.read_sync(lambda conn: console_reads.waiting_counts(conn, flow))
        for status, reason, count in rows:
            found[status][reason or ""] = found[status].get(reason or "", 0) + count
        return dict(found)

    def why_down(self, system: str) -> dict[str, Any] | None:
        """Why ``system``'s circuit is open: since when, the failures that opened it, the next
        probe, and the last error its deliveries met (None while it is closed)."""
        rows = self.store.read_sync(circuits.load_circuits)
        row = next((r for r in rows if r.system == system and r.state == CircuitState.OPEN), None)
        if row is None:
            return None
        opened = row.opened_at or self.clock.now()
        failure = self.store.read_sync(
            lambda conn: console_reads.last_failure(conn, system, opened - DOWN_LOOKBACK)
        )
        return {
            "system": system,
            "opened_at": opened.isoformat(),
            "next_probe_at": row.next_probe_at.isoformat() if row.next_probe_at else None,
            "failures": row.failures,
            "last_error": failure.detail if failure is not None else None,
            "last_error_at": failure.started_at.isoformat() if failure is not None else None,
            "last_outcome": failure.outcome if failure is not None else None,
            "last_status_code": failure.status_code if failure is not None else None,
        }

    def events(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.store.read_sync(lambda conn: events.list_events(conn, limit))
        return [
            {
                "id": r.id,
                "at": r.at.isoformat(),
                "kind": r.kind,
                "system": r.system,
                "flow": r.flow,
                "detail": json.loads(r.detail),
            }
            for r in rows
        ]

    # -- actions ----------------------------------------------------------------------------

    def repush_one(self, delivery_id: int, actor: str) -> Delivery:
        now = self.clock.now()

        def write(conn: Connection) -> None:
            d = deliveries.get_delivery(conn, delivery_id)
            if d is None:
                raise NotFound(f"no delivery {delivery_id}")
            if d.status not in REPUSHABLE:
                raise InputError(
                    f"delivery {delivery_id} is {d.state}; only dead or delivered ones are "
                    "re-pushed (held ones go out by themselves when their hold ends)"
                )
            self._requeue(conn, [(d.id, d.flow, d.system)], now)
            audit.add_audit(
                conn,
                now,
                actor,
                "repush",
                f"delivery:{delivery_id}",
                {"flow": d.flow, "key": d.key, "from": d.state},
            )

        self.store.write_sync(write)
        self._wake()
        return self.delivery(delivery_id)

    def repush(self, f: DeliveryFilter, actor: str, dry_run: bool = False) -> dict[str, Any]:
        """Re-push every dead (default) or delivered delivery matching ``f``."""
        if f.status is None:
            f = DeliveryFilter(**{**vars(f), "status": Status.DEAD})
        self.check_filter(f)
        if f.status not in REPUSHABLE:
            raise InputError(
                f"re-push takes dead or delivered deliveries, not {f.status!r}; held ones are "
                "released by resume or by their window or circuit ending"
            )
        now = self.clock.now()

        def write(conn: Connection) -> dict[str, Any]:
            rows = deliveries.delivery_rows(conn, f.conditions())
            result = {
                "count": len(rows),
                "dry_run": dry_run,
                "filter": f.to_json(),
                "sample": [r.id for r in rows[:20]],
            }
            if not dry_run and rows:
                self._requeue(conn, [(r.id, r.flow, r.system) for r in rows], now)
                target = f"flow:{f.flow}" if f.flow else "deliveries"
                audit.add_audit(conn, now, actor, "repush", target, result)
            return result

        result = self.store.write_sync(write) if not dry_run else self.store.read_sync(write)
        if not dry_run:
            self._wake()
        return result

    def requeue(self, conn: Connection, rows: list[tuple[int, str, str]], now: datetime) -> None:
        """Place ``(delivery id, flow, system)`` again as re-push does (ordered flows keep
        order; flow and system holds apply), for capabilities releasing their own holds.
        Runs inside a write; call :meth:`wake` after the commit."""
        self._requeue(conn, rows, now)

    def wake(self) -> None:
        self._wake()

    def _requeue(self, conn: Connection, rows: list[tuple[int, str, str]], now: datetime) -> None:
        holds = load_holds(conn, now, self.hooks.hold_sources)
        ordered_ids = [i for i, flow, _ in rows if self.topology.flows[flow].ordered]
        behind = (
            deliveries.with_undelivered_predecessor(conn, ordered_ids) if ordered_ids else set()
        )
        groups = holds.place_rows((Placed(*row) for row in rows), frozenset(behind))
        for (to_status, to_reason), ids in groups.items():
            transitions.set_state(conn, ids, to_status, to_reason, now, reset_failures=True)
        # A re-pushed earlier revision goes first again: later revisions of its key that are
        # waiting to go (pending, or held for a reason that will pass) wait behind it.
        pairs = {(flow, key) for flow, key in deliveries.keys_of(conn, ordered_ids)}
        if pairs:
            transitions.set_state(
                conn,
                sorted(transitions.waiting_behind(conn, pairs)),
                Status.HELD,
                HoldReason.BLOCKED,
                now,
            )
        events.notify_work(conn)

    def pause(self, flow: str, actor: str, note: str = "") -> dict[str, Any]:
        self.check_flow(flow)
        now = self.clock.now()

        def write(conn: Connection) -> int:
            circuits.set_flow_hold(conn, flow, HoldReason.PAUSED, now, actor, note)
            moved = transitions.move(
                conn,
                now,
                to_status=Status.HELD,
                to_reason=HoldReason.PAUSED,
                status=Status.PENDING,
                flow=flow,
            )
            audit.add_audit(
                conn, now, actor, "pause", f"flow:{flow}", {"held": moved, "note": note}
            )
            return moved

        held = self.store.write_sync(write)
        self._wake()  # the engine re-reads the holds before its next claim
        return {"flow": flow, "hold": "paused", "held": held}

    def resume(self, flow: str, actor: str) -> dict[str, Any]:
        self.check_flow(flow)
        now = self.clock.now()
        target = self.topology.flows[flow].target

        def write(conn: Connection) -> int:
            circuits.set_flow_hold(conn, flow, None, now, actor)
            status, reason = load_holds(conn, now, self.hooks.hold_sources).place(flow, target)
            released = transitions.move(
                conn,
                now,
                to_status=status,
                to_reason=reason,
                status=Status.HELD,
                reasons=list(RELEASABLE),
                flow=flow,
            )
            audit.add_audit(conn, now, actor, "resume", f"flow:{flow}", {"released": released})
            events.notify_work(conn)
            return released

        released = self.store.write_sync(write)
        self._wake()
        return {"flow": flow, "hold": None, "released": released}

    def prune(
        self, older_than: timedelta, actor: str, dry_run: bool = False, batch: int = 5000
    ) -> dict[str, Any]:
        """Remove documents older than ``older_than`` whose deliveries are all delivered.

        Never an undelivered document. Works in batches, each its own transaction, so a large
        prune does not hold the write lock for long.
        """
        if older_than <= timedelta(0):
            raise InputError("--older-than must be a positive duration, e.g. 90d")
        now = self.clock.now()
        cutoff = now - older_than
        if dry_run:
            count = self.store.read_sync(lambda conn: retention.count_prunable(conn, cutoff))
            return {"dry_run": True, "cutoff": cutoff.isoformat(), "documents": count}
        totals = [0, 0, 0]
        while True:

            def step(conn: Connection) -> tuple[int, int, int]:
                return retention.delete_documents(
                    conn, retention.prunable_documents(conn, cutoff, batch)
                )

            removed = self.store.write_sync(step)
            totals = [a + b for a, b in zip(totals, removed, strict=True)]
            if removed[0] < batch:
                break
        result = {
            "dry_run": False,
            "cutoff": cutoff.isoformat(),
            "documents": totals[0],
            "deliveries": totals[1],
            "attempts": totals[2],
        }
        self.store.write_sync(
            lambda conn: audit.add_audit(conn, now, actor, "prune", "documents", result)
        )
        return result

    def audit(self, target: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.store.read_sync(lambda conn: audit.list_audit(conn, target, limit))
        return [
            {
                "id": r.id,
                "at": r.at.isoformat(),
                "actor": r.actor,
                "action": r.action,
                "target": r.target,
                "detail": json.loads(r.detail),
            }
            for r in rows
        ]

    def _wake(self) -> None:
        if self._engine is not None:
            self._engine.wake()
