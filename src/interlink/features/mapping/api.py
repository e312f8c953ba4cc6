"""Mapping over HTTP: ``GET /api/v1/flows/{flow}/map/preview?document=ID``."""

# No `from __future__ import annotations`: FastAPI resolves these annotations at import.

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from interlink.errors import NotFound
from interlink.features.mapping.models import Preview
from interlink.features.mapping.service import NAME, Mapping
from interlink.service import Hub
from interlink.web.deps import hub_of, reader

router = APIRouter(tags=["mapping"])

HubDep = Annotated[Hub, Depends(hub_of)]
Reader = Annotated[str, Depends(reader)]


@router.get(
    "/api/v1/flows/{flow}/map/preview",
    summary="A stored document and the body the flow's map sends for it",
    response_model=Preview,
)
def preview(
    flow: str,
    hub: HubDep,
    _who: Reader,
    document: str = Query(..., description="The document's id."),
) -> dict[str, Any]:
    service: Mapping | None = hub.capabilities.get(NAME)
    if service is None:
        raise NotFound("mapping is not installed")
    return service.preview(flow, document)
