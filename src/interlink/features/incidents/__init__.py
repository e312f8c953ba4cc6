"""The incident register: the one official record of problems."""

from __future__ import annotations

from typing import TYPE_CHECKING

from interlink.ops.incidents import Incidents

if TYPE_CHECKING:
    from interlink.service import Hub

NAME = "incidents"


def install(hub: Hub) -> None:
    hub.capabilities[NAME] = Incidents(hub)


def incidents(hub: Hub) -> Incidents:
    service: Incidents = hub.capabilities[NAME]
    return service
