"""Reconciliation joins the hub: its service and its tables."""

from __future__ import annotations

from typing import TYPE_CHECKING

from interlink.reconcile import tables as _tables  # noqa: F401  (registers the tables)
from interlink.reconcile.run import Reconciler

if TYPE_CHECKING:
    from interlink.service import Hub

NAME = "reconcile"


def install(hub: Hub) -> None:
    hub.capabilities[NAME] = Reconciler(hub)


def reconcile(hub: Hub) -> Reconciler:
    service: Reconciler = hub.capabilities[NAME]
    return service
