"""``GET /api/v1/files``: the batch files of file-exchange flows and the result files read."""

# No `from __future__ import annotations`: FastAPI resolves these annotations at import.

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from interlink.features.file_exchange import models
from interlink.features.file_exchange.service import file_exchange
from interlink.service import Hub
from interlink.web.deps import hub_of, reader

router = APIRouter(tags=["files"])


@router.get(
    "/api/v1/files",
    summary="Batch files sent and result files read",
    response_model=models.FilesPage,
    response_model_exclude_unset=True,
)
def list_files(
    hub: Annotated[Hub, Depends(hub_of)],
    _who: Annotated[str, Depends(reader)],
    flow: Annotated[str | None, Query(description="Only this flow's batch files.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict[str, Any]:
    service = file_exchange(hub)
    return {"batches": service.batches(flow, limit), "results": service.results(limit)}
