"""The incident register (capability "incidents"): search and filters, register, and each
incident's timeline, links and attachments; comment, assign, upload, resolve; export. The
incidents service keeps the timeline (each entry with the console user) and every rule."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import PlainTextResponse

from interlink.errors import InputError
from interlink.features.incidents.service import NAME as INCIDENTS
from interlink.features.incidents.service import IncidentFilter, incidents
from interlink.times import parse_time
from interlink.web import downloads
from interlink.web.console.auth import csrf_ok
from interlink.web.console.render import ConsoleRoute, Ctx, Refused, operator_form, viewer
from interlink.web.uploads import FORM_OVERHEAD, file_of, read_form

router = APIRouter(route_class=ConsoleRoute)


def service(ctx: Ctx, name: str) -> Any | None:
    """The feature's service, or None when it is not installed (the page says so)."""
    return ctx.hub.capabilities.get(name)


FILTERS = ("status", "system", "flow", "since", "until", "q")


def _missing(ctx: Ctx) -> Response:
    return ctx.render("not_installed.html", name=INCIDENTS, title=ctx.t("nav.incidents"))


def _names(text: str) -> list[str]:
    return [p for p in re.split(r"[\s,]+", text.strip()) if p]


def _filter(ctx: Ctx, values: dict[str, str]) -> Any:
    from interlink.features.incidents.service import IncidentFilter

    tz = ctx.hub.topology.tz
    return IncidentFilter(
        status=values["status"] or None,
        system=values["system"] or None,
        flow=values["flow"] or None,
        since=parse_time(values["since"], tz, "since") if values["since"] else None,
        until=parse_time(values["until"], tz, "until") if values["until"] else None,
        text=values["q"] or None,
    )


@router.get("/incidents")
def register(request: Request, ctx: Annotated[Ctx, Depends(viewer)]) -> Response:
    svc = service(ctx, INCIDENTS)
    if svc is None:
        return _missing(ctx)
    from interlink.features.incidents.service import SEVERITIES, STATUSES

    values = {k: request.query_params.get(k, "").strip() for k in FILTERS}
    items = svc.search(_filter(ctx, values), limit=200)
    return ctx.render(
        "incidents.html",
        items=items,
        values=values,
        query={k: v for k, v in values.items() if v},
        statuses=STATUSES,
        severities=SEVERITIES,
        systems=list(ctx.hub.topology.systems),
        flows=list(ctx.hub.topology.flows),
    )


@router.get("/incidents/export")
def export(request: Request, ctx: Annotated[Ctx, Depends(viewer)], format: str = "csv") -> Response:
    svc = service(ctx, INCIDENTS)
    if svc is None:
        return _missing(ctx)
    values = {k: request.query_params.get(k, "").strip() for k in FILTERS}
    text = svc.export(format, _filter(ctx, values))
    media = "text/csv" if format == "csv" else "text/markdown"
    return PlainTextResponse(
        text,
        media_type=f"{media}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="incidents.{format}"'},
    )


@router.post("/incidents")
def new(
    ctx: Annotated[Ctx, Depends(operator_form)],
    title: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    severity: Annotated[str, Form()] = "medium",
    systems: Annotated[list[str] | None, Form()] = None,
    flows: Annotated[list[str] | None, Form()] = None,
    documents: Annotated[str, Form()] = "",
    assignee: Annotated[str, Form()] = "",
) -> Response:
    svc = service(ctx, INCIDENTS)
    if svc is None:
        return _missing(ctx)
    created = svc.new(
        title=title,
        actor=ctx.actor,
        description=description,
        severity=severity,
        systems=[s for s in systems or [] if s],
        flows=[f for f in flows or [] if f],
        documents=_names(documents),
        assignee=assignee or None,
    )
    return ctx.redirect(f"/incidents/{created['id']}")


@router.get("/incidents/{incident_id}")
def incident(incident_id: int, ctx: Annotated[Ctx, Depends(viewer)]) -> Response:
    svc = service(ctx, INCIDENTS)
    if svc is None:
        return _missing(ctx)
    from interlink.features.incidents.service import SEVERITIES, STATUSES

    return ctx.render(
        "incident.html", item=svc.get(incident_id), statuses=STATUSES, severities=SEVERITIES
    )


@router.get("/incidents/{incident_id}/attachments/{attachment_id}")
def attachment(
    incident_id: int, attachment_id: int, ctx: Annotated[Ctx, Depends(viewer)]
) -> Response:
    svc = service(ctx, INCIDENTS)
    if svc is None:
        return _missing(ctx)
    return downloads.attachment(*svc.attachment(incident_id, attachment_id), view=True)


@router.post("/incidents/{incident_id}/comment")
def comment(
    incident_id: int, ctx: Annotated[Ctx, Depends(operator_form)], text: Annotated[str, Form()] = ""
) -> Response:
    svc = service(ctx, INCIDENTS)
    if svc is None:
        return _missing(ctx)
    svc.comment(incident_id, text, actor=ctx.actor)
    return ctx.redirect(f"/incidents/{incident_id}")


@router.post("/incidents/{incident_id}/update")
def update(
    incident_id: int,
    ctx: Annotated[Ctx, Depends(operator_form)],
    assignee: Annotated[str | None, Form()] = None,
    status: Annotated[str, Form()] = "",
    severity: Annotated[str, Form()] = "",
    resolution: Annotated[str, Form()] = "",
) -> Response:
    """Assign, change status or severity, or resolve (status resolved with a resolution)."""
    svc = service(ctx, INCIDENTS)
    if svc is None:
        return _missing(ctx)
    if status and status != "resolved" and status == svc.get(incident_id)["status"]:
        status = ""  # the form sends the status it shows; only a change is a change
    if status == "resolved" and not resolution and svc.get(incident_id)["status"] == status:
        status = ""
    svc.update(
        incident_id,
        ctx.actor,
        assignee=assignee,
        status=status or None,
        severity=severity or None,
        resolution=resolution if status == "resolved" else None,
    )
    return ctx.redirect(f"/incidents/{incident_id}")


@router.post("/incidents/{incident_id}/attach")
async def attach(
    incident_id: int, request: Request, ctx: Annotated[Ctx, Depends(viewer)]
) -> Response:
    # The session and the role are checked before a byte of the upload is read; the form
    # (with its CSRF token) is read afterwards, at most the attachment limit.
    ctx.require("operator")
    from interlink.features.incidents.service import MAX_ATTACHMENT_BYTES

    form = await read_form(
        request, MAX_ATTACHMENT_BYTES + FORM_OVERHEAD, what="an attachment upload"
    )
    try:
        token = form.get("csrf")
        if not csrf_ok(ctx.session, token if isinstance(token, str) else None):
            raise Refused("error.csrf")
        svc = service(ctx, INCIDENTS)
        if svc is None:
            return _missing(ctx)
        file = file_of(form)
        if file is None or not file.filename:
            raise InputError("choose a file to upload")
        data = await file.read(MAX_ATTACHMENT_BYTES + 1)
        svc.attach(incident_id, file.filename, data, actor=ctx.actor)
    finally:
        await form.close()
    return ctx.redirect(f"/incidents/{incident_id}")


def open_incidents(ctx: Ctx, limit: int = 10) -> list[dict[str, Any]]:
    """Open and investigating incidents, newest first, for the overview."""
    found = []
    for status in ("open", "investigating"):
        found += incidents(ctx.hub).search(IncidentFilter(status=status), limit=limit)
    return sorted(found, key=lambda i: i["id"], reverse=True)[:limit]
