"""Rollout stages over HTTP: ``/api/v1/rollout`` and ``/api/v1/flows/{flow}/rollout``."""

# No `from __future__ import annotations`: FastAPI resolves these annotations at import.

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel, ConfigDict, Field

from interlink.features.rollout import models
from interlink.features.rollout.service import rollout
from interlink.service import Hub
from interlink.web.deps import hub_of, operator, reader

router = APIRouter(tags=["rollout"])

HubDep = Annotated[Hub, Depends(hub_of)]
Reader = Annotated[str, Depends(reader)]
Operator = Annotated[str, Depends(operator)]


class StageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage: str = Field(description="pilot or off (full goes through promote)")
    note: str = ""


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    force: bool = False
    reason: str | None = Field(None, description="required with force, for the audit")


@router.get(
    "/api/v1/rollout",
    summary="The stage of every rolled-out flow",
    response_model=models.StagePage,
    response_model_exclude_unset=True,
)
def list_stages(hub: HubDep, _who: Reader) -> dict[str, Any]:
    return {"items": rollout(hub).show()}


@router.get(
    "/api/v1/flows/{flow}/rollout",
    summary="A flow's stage, its pilot's record and the promotion gate's verdict",
    response_model=models.FlowRollout,
    response_model_exclude_unset=True,
)
async def flow_rollout(flow: str, hub: HubDep, _who: Reader) -> dict[str, Any]:
    service = rollout(hub)
    [stage] = service.show(flow)
    return {"stage": stage, "record": await service.record(flow)}


@router.post(
    "/api/v1/flows/{flow}/rollout",
    summary="Set a flow's stage to pilot or off (audited)",
    response_model=models.StageChanged,
    response_model_exclude_unset=True,
)
def set_stage(
    flow: str, hub: HubDep, who: Operator, request: Annotated[StageRequest, Body()]
) -> dict[str, Any]:
    return rollout(hub).set(flow, request.stage, actor=who, note=request.note)


@router.post(
    "/api/v1/flows/{flow}/rollout/promote",
    summary="Take a flow full if its pilot passes the gate (409 with the record if not)",
    response_model=models.Promoted,
    response_model_exclude_unset=True,
)
async def promote(
    flow: str, hub: HubDep, who: Operator, request: Annotated[PromoteRequest, Body()]
) -> dict[str, Any]:
    return await rollout(hub).promote(flow, who, force=request.force, reason=request.reason)
