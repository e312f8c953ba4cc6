"""The go-live checklist joins the hub (:mod:`.checklist` holds the items)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from interlink.features.readiness import checklist

if TYPE_CHECKING:
    from interlink.service import Hub

NAME = "readiness"


class Readiness:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def check(
        self, flow: str | None = None, within: timedelta = checklist.DEFAULT_DRILL_WITHIN
    ) -> dict[str, Any]:
        return await checklist.check(self.hub, flow, within)


def install(hub: Hub) -> None:
    hub.capabilities[NAME] = Readiness(hub)


def readiness(hub: Hub) -> Readiness:
    service: Readiness = hub.capabilities[NAME]
    return service
