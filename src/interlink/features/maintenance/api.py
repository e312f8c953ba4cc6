"""``/api/v1/maintenance``: announce, list and cancel maintenance windows, and their
iCalendar feed at ``/api/v1/maintenance.ics``."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from interlink.features.maintenance import models
from interlink.features.maintenance.service import maintenance
from interlink.service import Hub
from interlink.times import parse_time
from interlink.web.deps import hub_of, operator, reader

router = APIRouter(tags=["maintenance"])


class WindowRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    system: str
    start: str
    end: str
    reason: str
    force: bool = False
    dry_run: bool = False


@router.get(
    "/api/v1/maintenance",
    summary="Upcoming and open maintenance windows",
    response_model=models.WindowPage,
    response_model_exclude_unset=True,
)
def list_windows(
    hub: Annotated[Hub, Depends(hub_of)],
    _who: Annotated[str, Depends(reader)],
    all: Annotated[bool, Query(description="Past and cancelled windows too.")] = False,
) -> dict[str, Any]:
    return {"items": maintenance(hub).windows(include_all=all)}


@router.post(
    "/api/v1/maintenance",
    status_code=201,
    summary="Announce a window (or, with dry_run, check one without announcing it)",
    response_model=models.AnnouncedWindow,
    response_model_exclude_unset=True,
    responses={200: {"model": models.WindowCheck, "description": "A dry run: nothing announced"}},
)
def add_window(
    hub: Annotated[Hub, Depends(hub_of)],
    who: Annotated[str, Depends(operator)],
    request: Annotated[WindowRequest, Body()],
) -> Any:
    tz = hub.topology.tz
    start = parse_time(request.start, tz, "start")
    end = parse_time(request.end, tz, "end")
    result = maintenance(hub).add(
        request.system,
        start,
        end,
        request.reason,
        actor=who,
        force=request.force,
        dry_run=request.dry_run,
    )
    if request.dry_run:
        return JSONResponse(result, status_code=200)
    return result


@router.get(
    "/api/v1/maintenance.ics",
    summary="iCalendar feed of every maintenance window",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}}},
)
def calendar(
    hub: Annotated[Hub, Depends(hub_of)], _who: Annotated[str, Depends(reader)]
) -> Response:
    return Response(
        maintenance(hub).ics(),
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": 'inline; filename="maintenance.ics"'},
    )


@router.get(
    "/api/v1/maintenance/{window_id}",
    summary="One maintenance window",
    response_model=models.Window,
    response_model_exclude_unset=True,
)
def get_window(
    window_id: int,
    hub: Annotated[Hub, Depends(hub_of)],
    _who: Annotated[str, Depends(reader)],
) -> dict[str, Any]:
    return maintenance(hub).window(window_id)


@router.delete(
    "/api/v1/maintenance/{window_id}",
    summary="Cancel a maintenance window",
    response_model=models.Window,
    response_model_exclude_unset=True,
)
def cancel_window(
    window_id: int,
    hub: Annotated[Hub, Depends(hub_of)],
    who: Annotated[str, Depends(operator)],
) -> dict[str, Any]:
    return maintenance(hub).cancel(window_id, actor=who)
