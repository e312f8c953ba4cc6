"""Flows: the list, one flow's chart, deliveries (paged by id), re-push, pause and resume."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response

from interlink.errors import InputError
from interlink.model import DeadReason, HoldReason, Status
from interlink.service import DeliveryFilter
from interlink.web.console import charts
from interlink.web.console.documents import MAX_ID
from interlink.web.console.render import ConsoleRoute, Ctx, operator_form, viewer
from interlink.web.console.sections import rollout_stage, upcoming_windows
from interlink.web.console.systems import on_duty

router = APIRouter(route_class=ConsoleRoute)

PAGE = 50
HOUR = timedelta(hours=1)
FINAL_AFTER = timedelta(minutes=10)
CACHED_HOURS = 5_000
FILTERS = ("status", "reason", "key", "since", "until")
REASONS = [r.value for r in HoldReason] + [r.value for r in DeadReason]


def _filter(ctx: Ctx, flow: str, values: dict[str, str]) -> DeliveryFilter:
    return DeliveryFilter.parse(
        ctx.hub.topology.tz,
        flow=flow,
        status=values.get("status") or None,
        reason=values.get("reason") or None,
        key=values.get("key") or None,
        since=values.get("since") or None,
        until=values.get("until") or None,
    )


def _values(source: Any) -> dict[str, str]:
    return {k: str(source.get(k) or "").strip() for k in FILTERS}


def _hourly(
    ctx: Ctx, flow: str, slots: list[datetime], now: datetime
) -> dict[datetime, dict[str, int]]:
    """Attempts per hour by outcome. An hour that ended FINAL_AFTER ago no longer changes
    (attempts are recorded within a lease of their start), so it is counted once and kept;
    each render counts only the hours since the first one not kept."""
    cache = ctx.state.hours
    since = next((s for s in slots if (flow, s) not in cache), None)
    fresh: dict[datetime, dict[str, int]] = {}
    if since is not None:
        fresh = ctx.hub.hourly_outcomes(flow, since)
        for slot in slots:
            if slot >= since and slot + HOUR <= now - FINAL_AFTER:
                cache[(flow, slot)] = fresh.get(slot, {})
        if len(cache) > CACHED_HOURS:
            for old in [k for k in cache if k[1] < slots[0]]:
                del cache[old]
    return {
        s: cache.get((flow, s)) or fresh.get(s, {})
        for s in slots
        if s in fresh or cache.get((flow, s))
    }


def stuck(reasons: dict[str, dict[str, int]]) -> list[tuple[str, str, int]]:
    """(status, reason, deliveries) of what waits on a flow, largest first within a status:
    pending, in flight, held by reason, dead by reason. Delivered deliveries wait for nothing."""
    rows = []
    for status in (Status.PENDING, Status.IN_FLIGHT, Status.HELD, Status.DEAD):
        found = reasons.get(status, {})
        rows += [(status.value, r, n) for r, n in sorted(found.items(), key=lambda i: -i[1]) if n]
    return rows


def total(ctx: Ctx, f: DeliveryFilter, reasons: dict[str, dict[str, int]]) -> int | None:
    """How many deliveries the list's filter matches (None without a filter): from the flow's
    waiting counts for a status or reason other than delivered; counted in the store for
    delivered, a key or a period."""
    if not (f.status or f.reason or f.key or f.since or f.until):
        return None
    if f.key or f.since or f.until or f.status == Status.DELIVERED:
        return ctx.hub.count_deliveries(f)
    statuses = [f.status] if f.status else list(reasons)
    return sum(
        n
        for status in statuses
        for reason, n in reasons.get(status, {}).items()
        if f.reason in (None, reason)
    )


@router.get("/flows")
def flow_list(ctx: Annotated[Ctx, Depends(viewer)]) -> Response:
    return ctx.render("flows.html", status=ctx.hub.status())


@router.get("/flows/{name}")
def flow_page(
    name: str, request: Request, ctx: Annotated[Ctx, Depends(viewer)], before: int | None = None
) -> Response:
    ctx.hub.check_flow(name)
    if before is not None and not 0 < before <= MAX_ID:
        raise InputError(f"before={before} is no delivery id")
    values = _values(request.query_params)
    f = _filter(ctx, name, values)
    rows = ctx.hub.deliveries(f, before=before, limit=PAGE)
    now = ctx.hub.clock.now()
    slots = charts.hour_slots(now)
    hourly = _hourly(ctx, name, slots, now)
    tz = ctx.hub.topology.tz
    chart = charts.stacked_bars(
        slots,
        hourly,
        ctx.t("chart.title"),
        hour_label=lambda h: h.astimezone(tz).strftime("%H:%M"),
    )
    query = {k: v for k, v in values.items() if v}
    flow = ctx.hub.topology.flows[name]
    reasons = ctx.hub.reasons(name)
    window = next(
        (w for w in upcoming_windows(ctx) if w["system"] == flow.target and w.get("active")),
        None,
    )
    return ctx.render(
        "flow.html",
        flow=flow,
        hold=ctx.hub.flow_hold(name),
        stuck=stuck(reasons),
        total=total(ctx, f, reasons),
        down=ctx.hub.why_down(flow.target),
        window=window,
        rollout=rollout_stage(ctx, name),
        call=on_duty(ctx.hub.topology.systems[flow.target].contacts),
        rows=rows,
        values=values,
        query=query,
        next_before=rows[-1].id if len(rows) == PAGE else None,
        paged=before is not None,
        chart=chart,
        chart_empty=not hourly,
        statuses=[s.value for s in Status],
        reasons=REASONS,
        audit=ctx.hub.audit(target=f"flow:{name}", limit=20),
    )


@router.get("/flows/{name}/repush")
def repush_confirm(name: str, request: Request, ctx: Annotated[Ctx, Depends(viewer)]) -> Response:
    ctx.require("operator")
    ctx.hub.check_flow(name)
    values = _values(request.query_params)
    preview = ctx.hub.repush(_filter(ctx, name, values), actor=ctx.actor, dry_run=True)
    return ctx.render(
        "repush_confirm.html",
        flow=ctx.hub.topology.flows[name],
        values=values,
        preview=preview,
        query={k: v for k, v in values.items() if v},
    )


@router.post("/flows/{name}/repush")
async def repush(
    name: str, request: Request, ctx: Annotated[Ctx, Depends(operator_form)]
) -> Response:
    values = _values(await request.form())
    result = ctx.hub.repush(_filter(ctx, name, values), actor=ctx.actor, dry_run=False)
    # Back to the list the operator re-pushed from: the same filter (dead when none was
    # given, as re-push reads it), so what is left of it shows, not every delivery.
    kept = {k: v for k, v in values.items() if v}
    kept.setdefault("status", str(result["filter"]["status"]))
    return ctx.redirect(f"/flows/{name}", msg="repush.done", count=result["count"], **kept)


@router.post("/flows/{name}/pause")
def pause(
    name: str, ctx: Annotated[Ctx, Depends(operator_form)], note: Annotated[str, Form()] = ""
) -> Response:
    result = ctx.hub.pause(name, actor=ctx.actor, note=note.strip())
    return ctx.redirect(f"/flows/{name}", msg="paused.done", flow=name, count=result["held"])


@router.post("/flows/{name}/resume")
def resume(name: str, ctx: Annotated[Ctx, Depends(operator_form)]) -> Response:
    result = ctx.hub.resume(name, actor=ctx.actor)
    return ctx.redirect(f"/flows/{name}", msg="resumed.done", flow=name, count=result["released"])
