"""Maintenance windows (capability "maintenance"): a month calendar, the announce form with
its check before you confirm, cancel, and the drain report of past windows. Every rule (notice,
peak hours, overlaps) is the maintenance service's; this page shows what it says."""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Response

from interlink.errors import InputError
from interlink.features.maintenance.service import NAME as MAINTENANCE
from interlink.features.maintenance.service import downstreams, maintenance
from interlink.times import parse_time
from interlink.web.console.render import ConsoleRoute, Ctx, operator_form, viewer

router = APIRouter(route_class=ConsoleRoute)


def service(ctx: Ctx, name: str) -> Any | None:
    """The feature's service, or None when it is not installed (the page says so)."""
    return ctx.hub.capabilities.get(name)


DRAINED = "maintenance_drained"
ENDED = "maintenance_ended"


@dataclass
class Day:
    day: date
    in_month: bool
    today: bool
    windows: list[dict[str, Any]] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)  # other features' (changes)


def _touches(item: dict[str, Any], start: datetime, end: datetime) -> bool:
    first, last = datetime.fromisoformat(item["start"]), datetime.fromisoformat(item["end"])
    if first == last:  # a moment (a change shipping) belongs to the day it falls on
        return start <= first < end
    return first < end and last > start


def month_grid(
    year: int,
    month: int,
    windows: list[dict[str, Any]],
    tz: tzinfo,
    today: date,
    entries: list[dict[str, Any]] | None = None,
) -> list[list[Day]]:
    """Weeks (Monday first) of the month, each day with the windows that touch it in ``tz``
    (and the other features' ``entries``)."""
    weeks = []
    for week in calendar.Calendar(firstweekday=0).monthdatescalendar(year, month):
        row = []
        for d in week:
            start = datetime(d.year, d.month, d.day, tzinfo=tz)
            end = start + timedelta(days=1)
            touching = [
                w
                for w in windows
                if datetime.fromisoformat(w["start"]) < end
                and datetime.fromisoformat(w["end"]) > start
            ]
            others = [e for e in entries or [] if _touches(e, start, end)]
            row.append(Day(d, d.month == month, d == today, touching, others))
        weeks.append(row)
    return weeks


def _month(value: str | None, today: date) -> tuple[int, int]:
    if value:
        try:
            year, month = (int(p) for p in value.split("-", 1))
            if 1 <= month <= 12 and 1970 <= year <= 9999:
                return year, month
        except ValueError:
            pass
        raise InputError(f"month {value!r} is not YYYY-MM")
    return today.year, today.month


def _shift(year: int, month: int, by: int) -> str:
    index = year * 12 + month - 1 + by
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _reports(ctx: Ctx) -> dict[int, dict[str, Any]]:
    """window id → its drain report (or, before the drain is done, its end record)."""
    found: dict[int, dict[str, Any]] = {}
    for event in reversed(ctx.hub.events(limit=1000)):
        if event["kind"] in (ENDED, DRAINED) and "window" in event["detail"]:
            found[int(event["detail"]["window"])] = {"kind": event["kind"], **event["detail"]}
    return found


def _downstreams(ctx: Ctx) -> list[str]:
    return downstreams(ctx.hub.topology)


@router.get("/maintenance")
def calendar_page(ctx: Annotated[Ctx, Depends(viewer)], month: str | None = None) -> Response:
    svc = service(ctx, MAINTENANCE)
    if svc is None:
        return ctx.render("not_installed.html", name=MAINTENANCE, title=ctx.t("nav.maintenance"))
    tz = ctx.hub.topology.tz
    today = ctx.hub.clock.now().astimezone(tz).date()
    year, number = _month(month, today)
    windows = svc.windows(include_all=True)
    shown = [w for w in windows if w["state"] != "cancelled"]
    return ctx.render(
        "maintenance.html",
        weeks=month_grid(year, number, shown, tz, today, svc.other_entries()),
        month_label=f"{year:04d}-{number:02d}",
        prev_month=_shift(year, number, -1),
        next_month=_shift(year, number, 1),
        windows=sorted(windows, key=lambda w: w["start"], reverse=True),
        reports=_reports(ctx),
        systems=_downstreams(ctx),
        audit=ctx.hub.audit(target="maintenance", limit=20),
        form={},
        preview=None,
    )


def _window_input(ctx: Ctx, start: str, end: str) -> tuple[datetime, datetime]:
    tz = ctx.hub.topology.tz
    return parse_time(start, tz, "start"), parse_time(end, tz, "end")


@router.post("/maintenance/preview")
def preview(
    ctx: Annotated[Ctx, Depends(operator_form)],
    system: Annotated[str, Form()] = "",
    start: Annotated[str, Form()] = "",
    end: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> Response:
    """What announcing would do: the notice, peak-hour and overlap checks, nothing written."""
    svc = service(ctx, MAINTENANCE)
    if svc is None:
        return ctx.render("not_installed.html", name=MAINTENANCE, title=ctx.t("nav.maintenance"))
    starts, ends = _window_input(ctx, start, end)
    checks = svc.add(system, starts, ends, reason, actor=ctx.actor, dry_run=True)
    return ctx.render(
        "maintenance_preview.html",
        checks=checks,
        form={"system": system, "start": start, "end": end, "reason": reason},
    )


@router.post("/maintenance")
def announce(
    ctx: Annotated[Ctx, Depends(operator_form)],
    system: Annotated[str, Form()] = "",
    start: Annotated[str, Form()] = "",
    end: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    force: Annotated[str, Form()] = "",
) -> Response:
    svc = service(ctx, MAINTENANCE)
    if svc is None:
        return ctx.render("not_installed.html", name=MAINTENANCE, title=ctx.t("nav.maintenance"))
    starts, ends = _window_input(ctx, start, end)
    window = svc.add(system, starts, ends, reason, actor=ctx.actor, force=bool(force))
    return ctx.redirect(
        "/maintenance",
        msg="maintenance.announced",
        id=window["id"],
        month=window["start_local"][:7],
    )


@router.post("/maintenance/{window_id}/cancel")
def cancel(window_id: int, ctx: Annotated[Ctx, Depends(operator_form)]) -> Response:
    svc = service(ctx, MAINTENANCE)
    if svc is None:
        return ctx.render("not_installed.html", name=MAINTENANCE, title=ctx.t("nav.maintenance"))
    svc.cancel(window_id, actor=ctx.actor)
    return ctx.redirect("/maintenance", msg="maintenance.cancelled", id=window_id)


def upcoming_windows(ctx: Ctx) -> list[dict[str, Any]]:
    """Open and upcoming maintenance windows (``active`` set on the open ones), for the
    overview and the systems page."""
    return [{**w, "active": w["state"] == "active"} for w in maintenance(ctx.hub).windows()]
