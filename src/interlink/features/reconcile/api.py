"""Reconciliation over HTTP: run one (an uploaded export or the flow's query endpoint), list
stored runs, page through a run's differences, re-push what a run found missing."""

import asyncio
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.datastructures import UploadFile

from interlink.errors import InputError
from interlink.features.reconcile import models
from interlink.features.reconcile.service import parse_map, parse_tolerance, resolve_period
from interlink.features.reconcile.service import reconcile as reconciler
from interlink.features.reconcile.sources import check_encoding
from interlink.service import Hub
from interlink.web.deps import hub_of, operator, reader
from interlink.web.uploads import file_of, multipart_body, read_form

router = APIRouter()

ITEMS_IN_ANSWER = 1000
UPLOAD_SUFFIXES = (".csv", ".txt", ".tsv", ".xlsx", ".xlsm", ".ndjson", ".jsonl")


def _suffix(name: str | None) -> str:
    suffix = Path(name or "").suffix.lower()
    return suffix if suffix in UPLOAD_SUFFIXES else ".csv"


async def _save(upload: UploadFile, folder: str) -> Path:
    path = Path(folder) / f"export{_suffix(upload.filename)}"
    with path.open("wb") as f:
        while chunk := await upload.read(1 << 20):
            f.write(chunk)
    return path


@router.post(
    "/api/v1/reconcile/{flow}",
    summary="Reconcile a flow against downstream records",
    openapi_extra=multipart_body(
        "The downstream's export (CSV, XLSX, NDJSON); without it the flow's query endpoint "
        "is read. At most engine.max_upload_bytes."
    ),
    response_model=models.ReconcileReport,
    response_model_exclude_unset=True,
)
async def run_reconcile(
    flow: str,
    request: Request,
    hub: Annotated[Hub, Depends(hub_of)],
    who: Annotated[str, Depends(operator)],
    map: Annotated[str | None, Query(description="key=COL,amount=COL,...")] = None,
    encoding: Annotated[str | None, Query()] = None,
    date: Annotated[str | None, Query(description="That whole day, topology timezone")] = None,
    since: Annotated[str | None, Query()] = None,
    until: Annotated[str | None, Query()] = None,
    tolerance: Annotated[str | None, Query()] = None,
    repush_missing: Annotated[bool, Query()] = False,
    dry_run: Annotated[bool, Query()] = False,
) -> dict[str, Any]:
    """The report of the run (the CLI's ``--json`` shape), with at most 1000 items; the rest
    are paged from ``GET /api/v1/reconcile/runs/{id}``."""
    service = reconciler(hub)
    columns = parse_map(map)
    tol = parse_tolerance(tolerance)
    start, end = resolve_period(hub.topology.tz, date, since, until)
    if dry_run and not repush_missing:
        raise InputError("dry_run goes with repush_missing")
    check_encoding(encoding)
    # The export is read here, after the credential and the query were checked: a File()
    # parameter would be spooled first, whatever its size.
    form = None
    if request.headers.get("content-type", "").lower().startswith("multipart/"):
        limit = hub.topology.engine.max_upload_bytes
        form = await read_form(request, limit, what="the uploaded export")
    file = file_of(form) if form is not None else None
    with tempfile.TemporaryDirectory(prefix="interlink-upload-") as folder:
        try:
            path = await _save(file, folder) if file is not None else None
        finally:
            if form is not None:
                await form.close()
        name = file.filename if file is not None else None

        def work() -> dict[str, Any]:
            records = service.open_source(flow, path, encoding, start, end, source_name=name)
            result = service.run(
                flow, records, since=start, until=end, columns=columns, tolerance=tol, actor=who
            )
            body = result.to_json()
            if repush_missing and result.complete and result.run_id is not None:
                body["repush"] = service.repush_missing(result.run_id, who, dry_run=dry_run)
            return body

        body = await asyncio.to_thread(work)
    items = body["items"]
    body["items_total"] = len(items)
    body["items"] = items[:ITEMS_IN_ANSWER]
    return body


@router.get(
    "/api/v1/reconcile/runs",
    summary="Stored reconciliation runs, newest first",
    response_model=list[models.ReconcileRun],
    response_model_exclude_unset=True,
)
def list_runs(
    hub: Annotated[Hub, Depends(hub_of)],
    _who: Annotated[str, Depends(reader)],
    flow: str | None = None,
    before: int | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[dict[str, Any]]:
    return reconciler(hub).runs(flow, before, limit)


@router.get(
    "/api/v1/reconcile/runs/{run_id}",
    summary="A stored run and a page of its items",
    response_model=models.ReconcileRunPage,
    response_model_exclude_unset=True,
)
def get_run(
    run_id: int,
    hub: Annotated[Hub, Depends(hub_of)],
    _who: Annotated[str, Depends(reader)],
    category: str | None = None,
    after: int | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    return reconciler(hub).stored(run_id, category, after, limit)


@router.post(
    "/api/v1/reconcile/runs/{run_id}/repush",
    summary="Re-push what a run found missing",
    response_model=models.RepushMissing,
    response_model_exclude_unset=True,
)
def repush_run(
    run_id: int,
    hub: Annotated[Hub, Depends(hub_of)],
    who: Annotated[str, Depends(operator)],
    dry_run: bool = False,
) -> dict[str, Any]:
    return reconciler(hub).repush_missing(run_id, who, dry_run=dry_run)


__all__ = ["router"]
