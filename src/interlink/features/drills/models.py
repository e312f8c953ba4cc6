"""The drills API's answers, typed for ``/openapi.json`` (see
:mod:`interlink.web.routes.models`: extra fields pass through)."""

from __future__ import annotations

from typing import Any

from interlink.web.routes.models import Answer


class DrillRun(Answer):
    id: int
    name: str
    file: str | None
    started: str
    finished: str
    passed: bool
    flows: list[str]
    outages: list[str]


class DrillRunReport(DrillRun):
    report: Any
