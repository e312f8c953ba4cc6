"""Maintenance windows and deadline escalation join the hub.

Registers the window hold source (systems in an open window are held ``maintenance``), the
window housekeeper (hold, release, remind, report the drain) and the deadline housekeeper
(``deadline_at_risk``, ``deadline_missed``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from interlink.ops.deadlines import DeadlineWatch
from interlink.ops.maintenance import Maintenance

if TYPE_CHECKING:
    from interlink.service import Hub

NAME = "maintenance"
DEADLINES = "deadlines"


def install(hub: Hub) -> None:
    service = Maintenance(hub)
    watch = DeadlineWatch(hub.topology)
    hub.capabilities[NAME] = service
    hub.capabilities[DEADLINES] = watch
    hub.hooks.hold_sources.append(service.hold_source)
    hub.hooks.housekeepers.append(service.housekeeper)
    hub.hooks.housekeepers.append(watch.housekeeper)


def maintenance(hub: Hub) -> Maintenance:
    service: Maintenance = hub.capabilities[NAME]
    return service


def deadlines(hub: Hub) -> DeadlineWatch:
    watch: DeadlineWatch = hub.capabilities[DEADLINES]
    return watch
