"""The go-live readiness checklist.

No ``from __future__ import annotations`` here: FastAPI reads these annotations at runtime.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from interlink.config import parse_duration
from interlink.errors import InputError
from interlink.features.readiness import models
from interlink.features.readiness.checklist import DEFAULT_DRILL_WITHIN
from interlink.features.readiness.service import readiness
from interlink.service import Hub
from interlink.web.deps import hub_of, reader

router = APIRouter()


@router.get(
    "/api/v1/readiness",
    tags=["drills"],
    response_model=models.Readiness,
    response_model_exclude_unset=True,
)
async def get_readiness(
    hub: Annotated[Hub, Depends(hub_of)],
    _who: Annotated[str, Depends(reader)],
    flow: str | None = None,
    drill_within: Annotated[
        str | None, Query(description="How recent an outage drill must be, e.g. 30d")
    ] = None,
) -> dict[str, Any]:
    """The go-live checklist per flow: each item passed, failed or not available."""
    within = DEFAULT_DRILL_WITHIN
    if drill_within is not None:
        try:
            within = parse_duration(drill_within)
        except ValueError as e:
            raise InputError(f"drill_within: {e}") from None
    return await readiness(hub).check(flow, within)
