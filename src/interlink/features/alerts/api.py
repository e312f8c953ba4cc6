"""Alert records over HTTP: ``/api/v1/alerts``."""

# No `from __future__ import annotations`: FastAPI resolves these annotations at import.

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from interlink.errors import InputError
from interlink.features.alerts import models
from interlink.features.alerts.service import alerts
from interlink.service import Hub
from interlink.times import parse_time
from interlink.web.deps import hub_of, reader

router = APIRouter(tags=["alerts"])

STATUSES = ("pending", "sent", "failed", "unrouted")


@router.get(
    "/api/v1/alerts",
    summary="Alert messages, newest first: what went to whom",
    response_model=models.AlertPage,
    response_model_exclude_unset=True,
)
def list_alerts(
    hub: Annotated[Hub, Depends(hub_of)],
    _who: Annotated[str, Depends(reader)],
    status: str | None = Query(None, description="pending, sent, failed or unrouted"),
    kind: str | None = None,
    flow: str | None = None,
    system: str | None = None,
    since: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    if status is not None and status not in STATUSES:
        raise InputError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
    when = parse_time(since, hub.topology.tz, "since") if since else None
    items = alerts(hub).history(
        status=status, kind=kind, flow=flow, system=system, since=when, limit=limit
    )
    return {"items": items}
