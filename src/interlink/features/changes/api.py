"""Change notices over HTTP: ``/api/v1/changes``."""

# No `from __future__ import annotations`: FastAPI resolves these annotations at import.

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from interlink.features.changes import models
from interlink.features.changes.service import changes
from interlink.features.incidents.service import MAX_ATTACHMENT_BYTES
from interlink.service import Hub
from interlink.times import parse_time
from interlink.web import downloads
from interlink.web.deps import hub_of, operator, reader
from interlink.web.uploads import multipart_body, read_file

router = APIRouter(tags=["changes"])

HubDep = Annotated[Hub, Depends(hub_of)]
Reader = Annotated[str, Depends(reader)]
Operator = Annotated[str, Depends(operator)]


class ChangeIn(BaseModel):
    system: str = Field(description="the system the change belongs to")
    title: str
    at: str = Field(description="when it ships, ISO 8601 (the topology's zone without offset)")
    kind: str = Field(description="release, contract, codes, scenario or config")
    description: str = Field("", description="markdown")
    fields: list[str] = Field(default_factory=list, description="fields whose meaning changes")
    codes: list[str] = Field(default_factory=list, description="TABLE:VALUE, e.g. kind:refund")
    schema_: dict[str, Any] | None = Field(
        None, alias="schema", description="the proposed JSON Schema (kind contract)"
    )
    document: str | None = Field(None, description="the document type the schema is for")


class AckIn(BaseModel):
    recipient: int = Field(description="the recipient's id (from the change's recipients)")
    token: str | None = Field(
        None, description="the token of the recipient's personal link; without it the caller "
        "acknowledges on the recipient's behalf"
    )  # fmt: skip


@router.get(
    "/api/v1/changes",
    summary="Changes, latest shipping first",
    response_model=models.ChangePage,
    response_model_exclude_unset=True,
)
def list_changes(
    hub: HubDep,
    _who: Reader,
    system: str | None = Query(None, description="announced by or touching this system"),
    since: str | None = Query(None, description="shipping at or after (ISO 8601)"),
    until: str | None = Query(None, description="shipping before (ISO 8601)"),
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    tz = hub.topology.tz
    return {
        "items": changes(hub).search(
            system=system or None,
            since=parse_time(since, tz, "since") if since else None,
            until=parse_time(until, tz, "until") if until else None,
            limit=limit,
        )
    }


@router.post(
    "/api/v1/changes",
    status_code=201,
    summary="Announce a change: weigh it, record it, tell everyone it touches",
    response_model=models.ChangeDetail,
    response_model_exclude_unset=True,
)
def announce_change(
    hub: HubDep, who: Operator, request: Annotated[ChangeIn, Body()]
) -> dict[str, Any]:
    return changes(hub).announce(
        request.system,
        title=request.title,
        at=parse_time(request.at, hub.topology.tz, "at"),
        kind=request.kind,
        actor=who,
        description=request.description,
        fields=request.fields,
        codes=request.codes,
        schema=request.schema_,
        document=request.document,
    )


@router.get(
    "/api/v1/changes/{change_id}",
    summary="A change with what it touches and who has and hasn't acknowledged it",
    response_model=models.ChangeDetail,
    response_model_exclude_unset=True,
)
def get_change(change_id: int, hub: HubDep, _who: Reader) -> dict[str, Any]:
    return changes(hub).get(change_id)


@router.post(
    "/api/v1/changes/{change_id}/ack",
    summary="Acknowledge a change for one recipient (by its link's token, or on its behalf)",
    response_model=models.ChangeDetail,
    response_model_exclude_unset=True,
)
def acknowledge_change(
    change_id: int, hub: HubDep, who: Operator, request: Annotated[AckIn, Body()]
) -> dict[str, Any]:
    svc = changes(hub)
    if request.token:
        return svc.acknowledge_link(change_id, request.recipient, request.token)
    return svc.acknowledge(change_id, request.recipient, who)


@router.post(
    "/api/v1/changes/{change_id}/attachments",
    status_code=201,
    summary=f"Attach a file (png, jpeg, gif, webp, pdf, txt; at most {MAX_ATTACHMENT_BYTES} bytes)",
    openapi_extra=multipart_body("png, jpeg, gif, webp, pdf or txt"),
    response_model=models.ChangeAttachment,
    response_model_exclude_unset=True,
)
async def attach_to_change(
    change_id: int, request: Request, hub: HubDep, who: Operator
) -> dict[str, Any]:
    # The form is read here, after the credential: a File() parameter would be spooled first.
    name, data = await read_file(request, MAX_ATTACHMENT_BYTES, what="an attachment upload")
    return changes(hub).attach(change_id, name, data, who)


@router.get(
    "/api/v1/changes/{change_id}/attachments/{attachment_id}",
    summary="A change's file",
    response_class=FileResponse,
    responses={200: {"content": {"*/*": {}}}},
)
def change_attachment(
    change_id: int, attachment_id: int, hub: HubDep, _who: Reader
) -> FileResponse:
    return downloads.attachment(*changes(hub).attachment(change_id, attachment_id))
