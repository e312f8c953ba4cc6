"""Activity: the engine's recent events and the audit log of manual actions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from interlink.web.console.render import ConsoleRoute, Ctx, viewer

router = APIRouter(route_class=ConsoleRoute)


@router.get("/activity")
def activity(ctx: Annotated[Ctx, Depends(viewer)]) -> Response:
    return ctx.render(
        "activity.html", events=ctx.hub.events(limit=100), audit=ctx.hub.audit(limit=100)
    )
