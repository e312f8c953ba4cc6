"""Systems: contacts by role and current state — who do I call."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from interlink.web.console import graph
from interlink.web.console.render import ConsoleRoute, Ctx, viewer
from interlink.web.console.sections import upcoming_windows

router = APIRouter(route_class=ConsoleRoute)

ROLE_ORDER = ("ops", "dev", "product", "business")


@router.get("/systems")
def systems_page(ctx: Annotated[Ctx, Depends(viewer)]) -> Response:
    status = ctx.hub.status()
    windows = upcoming_windows(ctx)
    active = {w["system"] for w in windows if w.get("active")}
    topo = ctx.hub.topology
    rows = []
    for name, system in topo.systems.items():
        contacts = sorted(
            system.contacts,
            key=lambda c: ROLE_ORDER.index(c.role) if c.role in ROLE_ORDER else 99,
        )
        rows.append(
            {
                "name": name,
                "system": system,
                "state": graph.system_state(status["systems"].get(name, {}), name in active),
                "circuit": status["systems"].get(name, {}),
                "contacts": contacts,
                "inbound": [f for f in topo.flows.values() if f.target == name],
                "outbound": [f for f in topo.flows.values() if f.source == name],
                "windows": [w for w in windows if w["system"] == name],
            }
        )
    return ctx.render("systems.html", rows=rows)
