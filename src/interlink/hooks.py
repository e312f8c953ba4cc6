"""Extension points through which later capabilities join the core without editing it.

- :data:`HoldSource`: ``(conn, now) -> {system: hold reason}`` for systems whose deliveries
  must wait now (maintenance windows). Intake places new deliveries with it; the engine
  claims nothing for those systems and sends them no probes.
- :data:`Housekeeper`: ``(conn, now) -> None``, run inside the engine's claim transaction on
  every cycle (moving deliveries into and out of ``held: maintenance`` when a window starts or
  ends). It must be cheap when there is nothing to do.
- :data:`EventListener`: ``(events) -> None``, called after the engine committed a batch of
  events (circuit opened, delivery rejected, ...). Must not block.
- :data:`SystemWindows`: ``() -> {system: window}``, the windows open now on systems, shown
  by the hub's status (maintenance windows).
- :data:`Background`: ``async (stop: asyncio.Event) -> None``, a loop that runs beside the
  engine in ``serve`` (with workers) and ``worker`` until ``stop`` is set (the alerter).
- :data:`BodyMap`: ``(document body) -> body to send``, per flow in ``Hooks.body_maps``: the
  downstream's shape of a document (mapping). The engine calls it when it builds the request,
  so the signature and receipt are over the body actually sent; ``ValueError`` fails the
  delivery as ours (``local_error``), never the downstream's.
- :data:`FlowStatus`: ``() -> {flow: {field: value}}``, fields a feature adds to a flow in the
  hub's status (a rollout's stage and share).
- :data:`StatusSection`: ``() -> {key: value}``, top-level keys a feature adds to the hub's
  status beside ``flows`` and ``systems`` (each source's lag). Called on every status read
  (the console's live counters, ``GET /api/v1/status``), so it must be cheap: one query.
- ``collectors``: Prometheus collectors the API app serves at ``/metrics`` beside the backlog
  gauges, read at scrape time (a rollout's stage).
- :data:`RouteSource`: ``(conn, now) -> {flow: FlowRoute}``, read once per intake write
  (rollout stages). A :data:`FlowRoute` ``(key, payload) -> Route`` says whether a new
  document goes out on that flow as usual, waits ``held: rollout``, is skipped (recorded as a
  ``deliveries_skipped`` event) or is taken by another flow of the document instead.

The ``events`` table is the bus between capabilities: the engine and the operations features
write events (kinds listed in docs/architecture.md); alerting reads them in order of id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection

from interlink.model import HoldReason

HoldSource = Callable[[Connection, datetime], dict[str, str]]
Housekeeper = Callable[[Connection, datetime], None]
EventListener = Callable[[list[dict[str, Any]]], None]
Background = Callable[[asyncio.Event], Coroutine[Any, Any, None]]
SystemWindows = Callable[[], dict[str, Any]]
BodyMap = Callable[[bytes], bytes]


class Route(StrEnum):
    """Where a new document goes on one flow (rollout stages)."""

    DELIVER = "deliver"  # as usual
    HOLD = "hold"  # held: rollout, until the flow's stage lets it go
    SKIP = "skip"  # no delivery on this flow; recorded as an event
    ROUTED = "routed"  # another flow of the document takes it instead (a fallback pair)


FlowRoute = Callable[[str, Any], Route]
FlowStatus = Callable[[], Mapping[str, Mapping[str, Any]]]
RouteSource = Callable[[Connection, datetime], Mapping[str, FlowRoute]]
StatusSection = Callable[[], Mapping[str, Any]]


@dataclass
class Hooks:
    hold_sources: list[HoldSource] = field(default_factory=list)
    housekeepers: list[Housekeeper] = field(default_factory=list)
    event_listeners: list[EventListener] = field(default_factory=list)
    background: list[Background] = field(default_factory=list)
    system_windows: list[SystemWindows] = field(default_factory=list)
    body_maps: dict[str, BodyMap] = field(default_factory=dict)
    """flow → how its documents are reshaped for the downstream."""
    routes: list[RouteSource] = field(default_factory=list)
    """Per flow, where a new document goes (rollout stages); intake asks them."""
    flow_status: list[FlowStatus] = field(default_factory=list)
    status_sections: list[StatusSection] = field(default_factory=list)
    collectors: list[Any] = field(default_factory=list)

    def system_holds(self, conn: Connection, now: datetime) -> dict[str, str]:
        return merge_system_holds(*(source(conn, now) for source in self.hold_sources))


# When several system holds apply, the first listed is the one a delivery shows.
SYSTEM_HOLDS = (HoldReason.MAINTENANCE, HoldReason.DOWNSTREAM_DOWN)


def merge_system_holds(*sources: Mapping[str, str]) -> dict[str, str]:
    """system → the hold that wins among several sources (maintenance before down)."""
    merged: dict[str, str] = {}
    for source in sources:
        for system, reason in source.items():
            current = merged.get(system)
            if current is None or _rank(reason) < _rank(current):
                merged[system] = reason
    return merged


def _rank(reason: str) -> int:
    try:
        return SYSTEM_HOLDS.index(HoldReason(reason))
    except ValueError:
        return len(SYSTEM_HOLDS)
