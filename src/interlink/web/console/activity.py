"""Activity: the engine's recent events and the audit log of manual actions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from interlink.web.console.render import ConsoleRoute, Ctx, viewer

router = APIRouter(route_class=ConsoleRoute)

# Events read to fill a page of groups: ten rejections with the same answer are one line, so
# a burst of them does not push the circuit events off the list.
READ_PER_GROUP = 20


def grouped(events: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """Events (newest first) with repeats folded: one entry per kind, system, flow and
    message, at its newest occurrence, with ``count`` and ``first_at`` (the oldest seen)."""
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for e in events:
        detail = e["detail"] if isinstance(e["detail"], dict) else {}
        key = (e["kind"], e["system"], e["flow"], str(detail.get("detail", "")))
        found = groups.get(key)
        if found is None:
            groups[key] = {**e, "count": 1, "first_at": e["at"]}
        else:
            found["count"] += 1
            found["first_at"] = e["at"]
    return list(groups.values())[:limit]


def recent_events(ctx: Ctx, limit: int) -> list[dict[str, Any]]:
    return grouped(ctx.hub.events(limit=limit * READ_PER_GROUP), limit)


@router.get("/activity")
def activity(ctx: Annotated[Ctx, Depends(viewer)]) -> Response:
    return ctx.render(
        "activity.html", events=recent_events(ctx, 100), audit=ctx.hub.audit(limit=100)
    )
