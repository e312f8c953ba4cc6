"""The readiness API's answer, typed for ``/openapi.json`` (see
:mod:`interlink.web.routes.models`: extra fields pass through)."""

from __future__ import annotations

from pydantic import Field

from interlink.web.routes.models import Answer


class ReadinessItem(Answer):
    item: str
    status: str = Field(description="passed, failed or not available")
    detail: str
    next: str = Field(description="what to do next; empty when passed")


class FlowReadiness(Answer):
    flow: str
    source: str = Field(alias="from")
    to: str
    passed: bool
    items: list[ReadinessItem]


class Readiness(Answer):
    passed: bool
    checked_at: str
    drill_within_days: float
    flows: list[FlowReadiness]
