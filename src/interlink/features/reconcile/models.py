"""The reconciliation API's answers, typed for ``/openapi.json`` (see
:mod:`interlink.web.routes.models`: extra fields pass through). Fields are declared in the
order the service writes them, so the answer's key order is kept too."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from interlink.web.routes.models import Answer


class RepushMissing(Answer):
    run: int
    flow: str
    dry_run: bool
    missing: int
    repushed: int
    on_their_way: int
    on_their_way_by_status: dict[str, int]
    sample: list[Any] = Field(description="the first 20 keys re-pushed")


class ReconcileReport(Answer):
    run: int | None = Field(description="the stored run; null when nothing was stored")
    flow: str
    period: dict[str, str | None]
    source: str | None
    encoding: str | None
    complete: bool
    problems: Any
    problem_count: int
    skipped_out_of_period: int
    differences: Any
    categories: Any
    totals: Any
    items: list[dict[str, Any]] = Field(description="at most 1000; page the rest from the run")
    repush: RepushMissing | None = None
    items_total: int


class ReconcileRun(Answer):
    id: int
    flow: str
    period: dict[str, str | None]
    source: str | None
    started_at: str
    finished_at: str | None
    complete: bool
    categories: Any
    totals: Any
    problems: Any
    actor: str | None


class ReconcileRunPage(ReconcileRun):
    items: list[dict[str, Any]]
    next_after: int | None = Field(description="pass as `after` for the next page")
