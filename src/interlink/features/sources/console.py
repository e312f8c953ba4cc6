"""Sources on the console (capability "sources"): each source with its state and lag, the rows
intake refused (paged by id), and for operators pause, resume and poll now. The sources
service keeps every rule and the audit trail; this page shows what it says."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response

from interlink.errors import InputError
from interlink.features.sources.service import NAME, Sources
from interlink.web.console.documents import MAX_ID
from interlink.web.console.render import ConsoleRoute, Ctx, operator_form, viewer

router = APIRouter(route_class=ConsoleRoute)

PAGE = 50
# What a redirect after an action may ask the page to say: a fixed message, filled only with
# a source's name (checked against the topology) and numbers, so a link cannot put words of
# its own on the page.
DONE = {"paused", "resumed", "polled", "unreachable"}
_NUMBER = re.compile(r"[0-9]{1,19}")
KINDS = {"outbox": "sources.kind_outbox", "files": "sources.kind_files", "api": "sources.kind_api"}


def _service(ctx: Ctx) -> Sources | None:
    service: Sources | None = ctx.hub.capabilities.get(NAME)
    return service


def _missing(ctx: Ctx) -> Response:
    return ctx.render("not_installed.html", name=NAME, title=ctx.t("nav.sources"))


def age_text(ctx: Ctx, seconds: float | None) -> str:
    """``45 s``, ``12 min``, ``3 h 05 min``, ``2 d 4 h``: how long the oldest row has waited."""
    if seconds is None:
        return "—"
    s = max(0, int(seconds))
    if s < 120:
        return ctx.t("sources.age_s", n=s)
    if s < 7200:
        return ctx.t("sources.age_m", n=s // 60)
    if s < 2 * 86400:
        return ctx.t("sources.age_h", h=s // 3600, m=f"{s % 3600 // 60:02d}")
    return ctx.t("sources.age_d", d=s // 86400, h=s % 86400 // 3600)


def _done(ctx: Ctx, request: Request, names: set[str]) -> str | None:
    query = request.query_params
    done, name = query.get("done", ""), query.get("name", "")
    if done not in DONE or name not in names:
        return None
    numbers = {k: query.get(k, "0") for k in ("read", "refused")}
    if not all(_NUMBER.fullmatch(v) for v in numbers.values()):
        return None
    return ctx.t(f"sources.done_{done}", name=name, **numbers)


@router.get("/sources")
def sources_page(
    request: Request,
    ctx: Annotated[Ctx, Depends(viewer)],
    source: str | None = None,
    before: int | None = None,
) -> Response:
    svc = _service(ctx)
    if svc is None:
        return _missing(ctx)
    if before is not None and not 0 < before <= MAX_ID:
        raise InputError(f"before={before} is no problem id")
    items = svc.status()
    for item in items:
        item["age_text"] = age_text(ctx, item["oldest_unread_age"])
        item["kind_text"] = ctx.t(KINDS[item["kind"]]) if item["kind"] in KINDS else item["kind"]
        if item["schedule"]:  # times of day, the same in every language
            item["kind_text"] += " · " + ", ".join(item["schedule"])
    problems = svc.problems(source or None, PAGE, before)
    for problem in problems:
        row = problem["row"]
        shown = row.get("payload", row) if isinstance(row, dict) else row
        problem["row_text"] = json.dumps(shown, ensure_ascii=False, default=str)[:300]
    return ctx.render(
        "sources.html",
        items=items,
        done=_done(ctx, request, set(svc.found)),
        problems=problems,
        source=source or "",
        names=sorted(svc.found),
        next_before=problems[-1]["id"] if len(problems) == PAGE else None,
        paged=before is not None,
        audit=ctx.hub.audit(target="source", limit=20),
    )


def _back(ctx: Ctx, name: str, done: str, **numbers: int) -> Response:
    return ctx.redirect("/sources", done=done, name=name, **numbers)


@router.post("/sources/{name}/pause")
def pause(
    name: str, ctx: Annotated[Ctx, Depends(operator_form)], note: Annotated[str, Form()] = ""
) -> Response:
    svc = _service(ctx)
    if svc is None:
        return _missing(ctx)
    svc.pause(name, ctx.actor, note.strip())
    return _back(ctx, name, "paused")


@router.post("/sources/{name}/resume")
def resume(name: str, ctx: Annotated[Ctx, Depends(operator_form)]) -> Response:
    svc = _service(ctx)
    if svc is None:
        return _missing(ctx)
    svc.resume(name, ctx.actor)
    return _back(ctx, name, "resumed")


@router.post("/sources/{name}/poll")
async def poll_now(name: str, ctx: Annotated[Ctx, Depends(operator_form)]) -> Response:
    svc = _service(ctx)
    if svc is None:
        return _missing(ctx)
    svc.source(name)  # an unknown name: 404 before anything is read
    result: dict[str, Any] = await asyncio.to_thread(svc.poll, name)
    if result.get("paused"):
        return _back(ctx, name, "paused")
    if result.get("error"):
        return _back(ctx, name, "unreachable")
    return _back(
        ctx, name, "polled", read=int(result.get("read", 0)), refused=int(result.get("refused", 0))
    )
