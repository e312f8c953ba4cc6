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

The ``events`` table is the bus between capabilities: the engine and the operations features
write events (kinds listed in docs/architecture.md); alerting reads them in order of id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from interlink.model import HoldReason

HoldSource = Callable[[Connection, datetime], dict[str, str]]
Housekeeper = Callable[[Connection, datetime], None]
EventListener = Callable[[list[dict[str, Any]]], None]
Background = Callable[[asyncio.Event], Coroutine[Any, Any, None]]
SystemWindows = Callable[[], dict[str, Any]]
BodyMap = Callable[[bytes], bytes]


@dataclass
class Hooks:
    hold_sources: list[HoldSource] = field(default_factory=list)
    housekeepers: list[Housekeeper] = field(default_factory=list)
    event_listeners: list[EventListener] = field(default_factory=list)
    background: list[Background] = field(default_factory=list)
    system_windows: list[SystemWindows] = field(default_factory=list)
    body_maps: dict[str, BodyMap] = field(default_factory=dict)
    """flow → how its documents are reshaped for the downstream."""

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
