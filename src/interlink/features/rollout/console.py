"""The rollout on the console: the flow page's stage card (the ``rollout_stage`` section) and
its forms, set a stage and promote. The rollout service keeps every rule; a refused promotion
shows the gate's failed rules on the error page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Response

from interlink.features.rollout.service import NAME, Rollout
from interlink.web.console.render import ConsoleRoute, Ctx, operator_form

router = APIRouter(route_class=ConsoleRoute)


def _service(ctx: Ctx) -> Rollout:
    service: Rollout = ctx.hub.capabilities[NAME]
    return service


def rollout_stage(ctx: Ctx, flow: str = "") -> list[dict[str, Any]]:
    """The flow's stage, as one entry (none when the flow has no rollout: block)."""
    service = ctx.hub.capabilities.get(NAME)
    if service is None or flow not in service.settings:
        return []
    return list(service.show(flow))


@router.post("/flows/{name}/rollout")
def set_stage(
    name: str,
    ctx: Annotated[Ctx, Depends(operator_form)],
    stage: Annotated[str, Form()],
    note: Annotated[str, Form()] = "",
) -> Response:
    _service(ctx).set(name, stage, actor=ctx.actor, note=note.strip())
    return ctx.redirect(f"/flows/{name}")


@router.post("/flows/{name}/rollout/promote")
async def promote(
    name: str,
    ctx: Annotated[Ctx, Depends(operator_form)],
    force: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> Response:
    await _service(ctx).promote(name, ctx.actor, force=bool(force), reason=reason.strip() or None)
    return ctx.redirect(f"/flows/{name}")
