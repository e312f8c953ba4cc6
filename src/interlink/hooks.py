"""Extension points through which later capabilities join the core without editing it.

- :data:`HoldSource`: ``(conn, now) -> {system: hold reason}`` for systems whose deliveries
  must wait now (maintenance windows). Intake places new deliveries with it; the engine
  claims nothing for those systems and sends them no probes.
- :data:`Housekeeper`: ``(conn, now) -> None``, run inside the engine's claim transaction on
  every cycle (moving deliveries into and out of ``held: maintenance`` when a window starts or
  ends). It must be cheap when there is nothing to do.
- :data:`EventListener`: ``(events) -> None``, called after the engine committed a batch of
  events (circuit opened, delivery rejected, ...). Must not block.
- :data:`Background`: ``async (stop: asyncio.Event) -> None``, a loop that runs beside the
  engine in ``serve`` (with workers) and ``worker`` until ``stop`` is set (the alerter).

The ``events`` table is the bus between capabilities: the engine and the operations features
write events (kinds listed in docs/architecture.md); alerting reads them in order of id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

HoldSource = Callable[[Connection, datetime], dict[str, str]]
Housekeeper = Callable[[Connection, datetime], None]
EventListener = Callable[[list[dict[str, Any]]], None]
Background = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


@dataclass
class Hooks:
    hold_sources: list[HoldSource] = field(default_factory=list)
    housekeepers: list[Housekeeper] = field(default_factory=list)
    event_listeners: list[EventListener] = field(default_factory=list)
    background: list[Background] = field(default_factory=list)

    def system_holds(self, conn: Connection, now: datetime) -> dict[str, str]:
        from interlink.engine.holds import merge_system_holds

        return merge_system_holds(*(source(conn, now) for source in self.hold_sources))
