"""Systems: contacts by role and current state — who do I call, and why a downstream is down."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from interlink.config import Contact
from interlink.web.console import graph
from interlink.web.console.render import ConsoleRoute, Ctx, viewer
from interlink.web.console.sections import recent_changes, upcoming_windows

router = APIRouter(route_class=ConsoleRoute)

ROLE_ORDER = ("ops", "dev", "product", "business")


def on_duty(contacts: Sequence[Contact]) -> list[Contact]:
    """Contacts in the order to call them: on call first, then by role (ops before dev before
    product before business), as declared within a role."""
    return sorted(
        contacts,
        key=lambda c: (
            c.on_call is None,
            ROLE_ORDER.index(c.role) if c.role in ROLE_ORDER else len(ROLE_ORDER),
        ),
    )


@router.get("/systems")
def systems_page(ctx: Annotated[Ctx, Depends(viewer)]) -> Response:
    status = ctx.hub.status()
    windows = upcoming_windows(ctx)
    changes = recent_changes(ctx)
    active = {w["system"] for w in windows if w.get("active")}
    topo = ctx.hub.topology
    rows = []
    for name, system in topo.systems.items():
        circuit = status["systems"].get(name, {})
        rows.append(
            {
                "name": name,
                "system": system,
                "state": graph.system_state(circuit, name in active),
                "circuit": circuit,
                "down": ctx.hub.why_down(name) if circuit.get("circuit") == "open" else None,
                "contacts": on_duty(system.contacts),
                "inbound": [f for f in topo.flows.values() if f.target == name],
                "outbound": [f for f in topo.flows.values() if f.source == name],
                "windows": [w for w in windows if w["system"] == name],
                "changes": [c for c in changes if name == c["system"] or name in c["systems"]][:5],
            }
        )
    return ctx.render("systems.html", rows=rows, incidents="incidents" in ctx.hub.capabilities)
