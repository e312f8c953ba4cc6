"""The rollout API's answers, typed for ``/openapi.json`` (see
:mod:`interlink.web.routes.models`: extra fields pass through). Fields are declared in the
order the service writes them, so the answer's key order is kept too."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from interlink.web.routes.models import Answer


class Stage(Answer):
    """A rolled-out flow's stage, as the topology and the run time set it."""

    flow: str
    stage: str = Field(description="pilot, full or off")
    initial: str = Field(description="the stage the topology names (the run time overrides it)")
    since: str | None = Field(description="when the stage was set at run time")
    by: str | None
    note: str | None
    when: dict[str, Any] | None = Field(description="the pilot's matcher on payload fields")
    share: float | None = Field(description="the pilot's share of business keys, in percent")
    outside: str = Field(description="hold, skip or fallback:FLOW")
    fallback: str | None


class StagePage(Answer):
    items: list[Stage]


class StageChanged(Stage):
    from_: str = Field(alias="from", description="the stage before")
    released: int = Field(description="deliveries held rollout that went out again")


class GateCheck(Answer):
    name: str
    passed: bool
    detail: str


class Gate(Answer):
    passed: bool
    rules: dict[str, Any]
    checks: list[GateCheck]


class Record(Answer):
    """The pilot's record and the gate's verdict on it."""

    flow: str
    stage: str
    pilot_since: str | None
    pilot_seconds: float | None
    delivered: int
    dead: int
    pending: int
    held: dict[str, int]
    outside: dict[str, Any] = Field(description="held, held_since, skipped, fallback")
    open_incidents: list[dict[str, Any]]
    reconciliation: dict[str, Any] | None
    readiness: dict[str, Any] | None
    gate: Gate


class FlowRollout(Answer):
    stage: Stage
    record: Record


class Promoted(StageChanged):
    forced: bool
    record: Record
