"""The incident register over HTTP: ``/api/v1/incidents``."""

# No `from __future__ import annotations`: FastAPI resolves these annotations at import.

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import FileResponse, PlainTextResponse
from pydantic import BaseModel, Field

from interlink.features.incidents import models
from interlink.features.incidents.service import MAX_ATTACHMENT_BYTES, IncidentFilter, incidents
from interlink.service import Hub
from interlink.times import parse_time
from interlink.web import downloads
from interlink.web.deps import hub_of, operator, reader
from interlink.web.uploads import multipart_body, read_file

router = APIRouter(tags=["incidents"])

HubDep = Annotated[Hub, Depends(hub_of)]
Reader = Annotated[str, Depends(reader)]
Operator = Annotated[str, Depends(operator)]


class IncidentIn(BaseModel):
    title: str
    description: str = ""
    category: str = "other"
    severity: str = "medium"
    systems: list[str] = Field(default_factory=list)
    flows: list[str] = Field(default_factory=list)
    documents: list[str] = Field(default_factory=list)
    assignee: str | None = None


class IncidentChange(BaseModel):
    status: str | None = None
    assignee: str | None = None
    resolution: str | None = None
    comment: str | None = None
    severity: str | None = None


def _filter(
    hub: Hub,
    status: str | None,
    system: str | None,
    flow: str | None,
    since: str | None,
    until: str | None,
    q: str | None,
) -> IncidentFilter:
    tz = hub.topology.tz
    return IncidentFilter(
        status=status or None,
        system=system or None,
        flow=flow or None,
        since=parse_time(since, tz, "since") if since else None,
        until=parse_time(until, tz, "until") if until else None,
        text=q or None,
    )


@router.get(
    "/api/v1/incidents/export",
    summary="All incidents as CSV or Markdown",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/csv": {}, "text/markdown": {}}}},
)
def export(
    hub: HubDep,
    _who: Reader,
    format: str = Query("csv", description="csv or md"),
    status: str | None = None,
    system: str | None = None,
    flow: str | None = None,
    since: str | None = None,
    until: str | None = None,
    q: str | None = None,
) -> PlainTextResponse:
    f = _filter(hub, status, system, flow, since, until, q)
    text = incidents(hub).export(format, f)
    media = "text/csv" if format == "csv" else "text/markdown"
    return PlainTextResponse(
        text,
        media_type=f"{media}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="incidents.{format}"'},
    )


@router.get(
    "/api/v1/incidents/stats",
    summary="Open incidents, MTTR, recurring problems",
    response_model=models.IncidentStats,
    response_model_exclude_unset=True,
)
def stats(hub: HubDep, _who: Reader) -> dict[str, Any]:
    return incidents(hub).stats()


@router.get(
    "/api/v1/incidents",
    summary="Incidents, newest first, searchable",
    response_model=models.IncidentPage,
    response_model_exclude_unset=True,
)
def list_incidents(
    hub: HubDep,
    _who: Reader,
    status: str | None = None,
    system: str | None = None,
    flow: str | None = None,
    since: str | None = Query(None, description="registered at or after (ISO 8601)"),
    until: str | None = Query(None, description="registered before (ISO 8601)"),
    q: str | None = Query(None, description="text in title, description, resolution, timeline"),
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    f = _filter(hub, status, system, flow, since, until, q)
    return {"items": incidents(hub).search(f, limit=limit)}


@router.post(
    "/api/v1/incidents",
    status_code=201,
    summary="Open an incident by hand",
    response_model=models.IncidentDetail,
    response_model_exclude_unset=True,
)
def new_incident(
    hub: HubDep, who: Operator, request: Annotated[IncidentIn, Body()]
) -> dict[str, Any]:
    return incidents(hub).new(actor=who, **request.model_dump())


@router.get(
    "/api/v1/incidents/{incident_id}",
    summary="An incident with its timeline",
    response_model=models.IncidentDetail,
    response_model_exclude_unset=True,
)
def get_incident(incident_id: int, hub: HubDep, _who: Reader) -> dict[str, Any]:
    return incidents(hub).get(incident_id)


@router.patch(
    "/api/v1/incidents/{incident_id}",
    summary="Change status, assignee, severity; resolve (with a resolution); comment",
    response_model=models.IncidentDetail,
    response_model_exclude_unset=True,
)
def change_incident(
    incident_id: int, hub: HubDep, who: Operator, request: Annotated[IncidentChange, Body()]
) -> dict[str, Any]:
    return incidents(hub).update(incident_id, who, **request.model_dump())


@router.post(
    "/api/v1/incidents/{incident_id}/attachments",
    status_code=201,
    summary=f"Attach a file (png, jpeg, gif, webp, pdf, txt; at most {MAX_ATTACHMENT_BYTES} bytes)",
    openapi_extra=multipart_body("png, jpeg, gif, webp, pdf or txt"),
    response_model=models.Attachment,
    response_model_exclude_unset=True,
)
async def attach(incident_id: int, request: Request, hub: HubDep, who: Operator) -> dict[str, Any]:
    # The form is read here, after the credential: a File() parameter would be spooled first.
    name, data = await read_file(request, MAX_ATTACHMENT_BYTES, what="an attachment upload")
    return incidents(hub).attach(incident_id, name, data, who)


@router.get(
    "/api/v1/incidents/{incident_id}/attachments/{attachment_id}",
    summary="A file",
    response_class=FileResponse,
    responses={200: {"content": {"*/*": {}}}},
)
def attachment(incident_id: int, attachment_id: int, hub: HubDep, _who: Reader) -> FileResponse:
    return downloads.attachment(*incidents(hub).attachment(incident_id, attachment_id))
