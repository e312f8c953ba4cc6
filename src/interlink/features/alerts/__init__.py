"""Alerts: the alerter runs beside the engine, routing events to people by role."""

from __future__ import annotations

from typing import TYPE_CHECKING

from interlink.ops.alerter import Alerter

if TYPE_CHECKING:
    from interlink.service import Hub

NAME = "alerts"


def install(hub: Hub) -> None:
    alerter = Alerter(hub)
    hub.capabilities[NAME] = alerter
    hub.hooks.background.append(alerter.loop)


def alerts(hub: Hub) -> Alerter:
    alerter: Alerter = hub.capabilities[NAME]
    return alerter
