"""Contracts and scenarios: versions, check and publish (:class:`Registry`), scenario coverage
and the release of documents held for an unmapped scenario (:class:`Scenarios`)."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from interlink.errors import InputError, NotFound
from interlink.features.contracts import coverage, queries
from interlink.features.contracts.registry import Registry
from interlink.store.queries import audit, documents

if TYPE_CHECKING:
    from interlink.service import Hub

NAME = "contracts"


class Scenarios:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def report(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        flow: str | None = None,
    ) -> dict[str, Any]:
        self.hub.check_flow(flow)
        topology = self.hub.topology
        classified = [n for n, d in topology.documents.items() if d.scenarios]

        def read(conn: Connection) -> coverage.Counts:
            by_type = {
                (r.type, r.scenario): r.n for r in queries.scenario_counts(conn, since, until)
            }
            by_flow = {
                (r.flow, r.scenario): r.n
                for r in queries.flow_scenario_counts(conn, since, until, flow)
            }
            unmapped = {
                name: [
                    json.loads(r.payload)
                    for r in queries.unmapped_payloads(
                        conn, name, since, until, coverage.UNMAPPED_SAMPLE
                    )
                ]
                for name in classified
                if by_type.get((name, None))
            }
            return coverage.Counts(by_type, by_flow, unmapped)

        report = coverage.build(topology, self.hub.store.read_sync(read), flow)
        report["period"] = {
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
        }
        report["flow"] = flow
        return report

    def release(
        self,
        actor: str,
        *,
        document: str | None = None,
        flow: str | None = None,
        everything: bool = False,
    ) -> dict[str, Any]:
        """Let deliveries held as ``unmapped_scenario`` go: one document's, or a whole flow's."""
        self.hub.check_flow(flow)
        if document is None and not (flow and everything):
            raise InputError("name a document (--document ID), or a flow with --all")
        now = self.hub.clock.now()

        def write(conn: Connection) -> dict[str, Any]:
            rows = queries.unmapped_held(conn, document, flow)
            if document is not None and not rows and documents.get_document(conn, document) is None:
                raise NotFound(f"no document {document!r}")
            self.hub.requeue(conn, [(r.id, r.flow, r.system) for r in rows], now)
            by_flow: dict[str, int] = defaultdict(int)
            for r in rows:
                by_flow[r.flow] += 1
            result = {
                "released": len(rows),
                "flows": dict(by_flow),
                "documents": sorted({r.document_id for r in rows})[:100],
            }
            if rows:
                target = f"document:{document}" if document else f"flow:{flow}"
                audit.add_audit(conn, now, actor, "release_unmapped", target, result)
            return result

        result = self.hub.store.write_sync(write)
        if result["released"]:
            self.hub.wake()
        return result


def install(hub: Hub) -> None:
    registry = Registry(hub)
    registry.start()
    hub.capabilities[NAME] = registry
    hub.capabilities["scenarios"] = Scenarios(hub)
    hub.hooks.housekeepers.append(registry.poll)


def contracts(hub: Hub) -> Registry:
    found: Registry = hub.capabilities[NAME]
    return found


def scenarios(hub: Hub) -> Scenarios:
    found: Scenarios = hub.capabilities["scenarios"]
    return found
