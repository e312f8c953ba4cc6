"""Drill runs.

No ``from __future__ import annotations`` here: FastAPI reads these annotations at runtime.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from interlink.features.drills import models
from interlink.features.drills.service import drills
from interlink.service import Hub
from interlink.web.deps import hub_of, reader

router = APIRouter()


@router.get(
    "/api/v1/drills/runs",
    tags=["drills"],
    response_model=list[models.DrillRun],
    response_model_exclude_unset=True,
)
def list_runs(
    hub: Annotated[Hub, Depends(hub_of)],
    _who: Annotated[str, Depends(reader)],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[dict[str, Any]]:
    """Drill runs, newest first (without their reports)."""
    return drills(hub).runs(limit)


@router.get(
    "/api/v1/drills/runs/{run_id}",
    tags=["drills"],
    response_model=models.DrillRunReport,
    response_model_exclude_unset=True,
)
def get_run(
    run_id: int,
    hub: Annotated[Hub, Depends(hub_of)],
    _who: Annotated[str, Depends(reader)],
) -> dict[str, Any]:
    """One drill run with its full report."""
    return drills(hub).run(run_id)
