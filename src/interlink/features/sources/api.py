"""``/api/v1/sources``: the sources with their lag, one poll, pause and resume, and the rows
intake refused."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from pydantic import BaseModel, ConfigDict

from interlink.features.sources import models
from interlink.features.sources.service import sources
from interlink.service import Hub
from interlink.web.deps import hub_of, operator, reader

router = APIRouter(tags=["sources"])


class PauseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = ""


@router.get(
    "/api/v1/sources",
    summary="Sources with their cursor and lag",
    response_model=models.SourcePage,
    response_model_exclude_unset=True,
)
def list_sources(
    hub: Annotated[Hub, Depends(hub_of)], _who: Annotated[str, Depends(reader)]
) -> dict[str, Any]:
    return {"items": sources(hub).status()}


@router.get(
    "/api/v1/sources/problems",
    summary="Rows intake refused, newest first",
    response_model=models.SourceProblemPage,
    response_model_exclude_unset=True,
)
def list_problems(
    hub: Annotated[Hub, Depends(hub_of)],
    _who: Annotated[str, Depends(reader)],
    source: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[int | None, Query(description="Only problems with a smaller id.")] = None,
) -> dict[str, Any]:
    items = sources(hub).problems(source, limit, before)
    return {"items": items, "next_before": items[-1]["id"] if len(items) == limit else None}


@router.post(
    "/api/v1/sources/{name}/poll",
    summary="Take one batch now",
    response_model=models.SourcePoll,
    response_model_exclude_unset=True,
)
async def poll(
    name: str, hub: Annotated[Hub, Depends(hub_of)], _who: Annotated[str, Depends(operator)]
) -> dict[str, Any]:
    return await asyncio.to_thread(sources(hub).poll, name)


@router.post(
    "/api/v1/sources/{name}/pause",
    summary="Stop polling a source",
    response_model=models.SourcePaused,
    response_model_exclude_unset=True,
)
def pause(
    name: str,
    hub: Annotated[Hub, Depends(hub_of)],
    who: Annotated[str, Depends(operator)],
    request: Annotated[PauseRequest | None, Body()] = None,
) -> dict[str, Any]:
    return sources(hub).pause(name, who, request.note if request else "")


@router.post(
    "/api/v1/sources/{name}/resume",
    summary="Poll a paused source again",
    response_model=models.SourcePaused,
    response_model_exclude_unset=True,
)
def resume(
    name: str, hub: Annotated[Hub, Depends(hub_of)], who: Annotated[str, Depends(operator)]
) -> dict[str, Any]:
    return sources(hub).resume(name, who)
