"""The overview: the topology with live state, today's counts, what is coming and what is
wrong; the live-counter feed for the script; and our own static files."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import FileResponse, JSONResponse

from interlink.errors import NotFound
from interlink.web.console import graph
from interlink.web.console.activity import recent_events
from interlink.web.console.i18n import TERMS
from interlink.web.console.render import HERE, ConsoleRoute, Ctx, error_page, viewer, words
from interlink.web.console.sections import deadlines_at_risk, open_incidents, upcoming_windows

router = APIRouter(route_class=ConsoleRoute)

FAILING_EVENTS = ("delivery_rejected", "delivery_gave_up", "delivery_local_error")
FAILING_WITHIN = timedelta(hours=1)
LIVE_TTL = 3.0
STATIC = {
    "console.css": "text/css",
    "console.js": "text/javascript",
    "favicon.svg": "image/svg+xml",
}


def start_of_day(ctx: Ctx) -> datetime:
    local = ctx.hub.clock.now().astimezone(ctx.hub.topology.tz)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def failing_flows(ctx: Ctx) -> set[str]:
    """Flows with a delivery that went dead within the last hour (from the engine's events)."""
    since = ctx.hub.clock.now() - FAILING_WITHIN
    return {
        e["flow"]
        for e in ctx.hub.events(limit=200)
        if e["kind"] in FAILING_EVENTS and e["flow"] and datetime.fromisoformat(e["at"]) >= since
    }


def totals(status: dict[str, Any], delivered_today: dict[str, int]) -> dict[str, int]:
    flows = status["flows"].values()
    return {
        "pending": sum(f["pending"] + f["in_flight"] for f in flows),
        "held": sum(sum(f["held"].values()) for f in flows),
        "dead": sum(f["dead"] for f in flows),
        "delivered_today": sum(delivered_today.values()),
    }


def live(ctx: Ctx) -> dict[str, Any]:
    today = start_of_day(ctx)
    status = ctx.hub.status()
    delivered_today = ctx.hub.delivered_since(today)
    for name, entry in status["flows"].items():
        entry["delivered_today"] = delivered_today.get(name, 0)
        entry["held_total"] = sum(entry["held"].values())
    return {"status": status, "totals": totals(status, delivered_today)}


@router.get("/")
def overview(ctx: Annotated[Ctx, Depends(viewer)]) -> Response:
    data = live(ctx)
    windows = upcoming_windows(ctx)
    nodes, edges = graph.states(
        ctx.hub.topology,
        data["status"],
        {w["system"] for w in windows if w.get("active")},
        failing_flows(ctx),
    )
    labels = {f"state.{s}": ctx.w("state", s) for s in TERMS["state"]}
    labels |= {word: ctx.t(word) for word in ("pending", "held", "dead")}
    labels |= {f"stage.{s}": ctx.w("stage", s) for s in TERMS.get("stage", {})}
    try:
        svg: str | None = graph.render_svg(
            graph.dot_source(nodes, edges, labels), ctx.state.svg_cache
        )
        svg_error = None
    except graph.GraphvizMissing as e:
        svg, svg_error = None, str(e)
    return ctx.render(
        "overview.html",
        svg=svg,
        svg_error=svg_error,
        nodes=nodes,
        edges=edges,
        windows=windows,
        incidents=open_incidents(ctx),
        deadlines=deadlines_at_risk(ctx),
        events=recent_events(ctx, 10),
        **data,
    )


@router.get("/console/live")
def live_counts(ctx: Annotated[Ctx, Depends(viewer)]) -> Response:
    """What the page script refreshes: per flow counts and the totals. Shared by every open
    page for LIVE_TTL seconds (of real time: it spares the store, it is not a rule), so that
    many tabs polling a large store cost one count."""
    cached = ctx.state.live
    if cached is None or time.monotonic() - cached[0] > LIVE_TTL:
        cached = ctx.state.live = (time.monotonic(), live(ctx))
    return JSONResponse(cached[1])


@router.get("/console/static/{name}")
def static(name: str) -> Response:
    if name not in STATIC:
        raise NotFound(f"no file {name}")
    return FileResponse(
        HERE / "static" / name,
        media_type=STATIC[name],
        headers={"Cache-Control": "max-age=300"},
    )


@router.get("/favicon.ico")
def favicon() -> Response:
    """Browsers ask for /favicon.ico whatever the page links: the same SVG."""
    return static("favicon.svg")


fallback = APIRouter()


@fallback.get("/console/{rest:path}")
def no_such_page(rest: str, request: Request) -> Response:
    """An address under /console/ that is no page: a page saying so, not the API's JSON.
    Mounted after every console page (see :func:`interlink.web.console.pages`)."""
    return error_page(request, 404, words(request, "error.not_found", path=request.url.path))
