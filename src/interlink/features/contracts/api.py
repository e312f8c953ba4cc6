"""Contracts and scenarios over HTTP: ``/api/v1/contracts`` and ``/api/v1/scenarios``."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query

from interlink.errors import InputError
from interlink.features.contracts import models
from interlink.features.contracts.registry import DEFAULT_REPLAY
from interlink.features.contracts.service import contracts, scenarios
from interlink.service import Hub
from interlink.times import parse_time
from interlink.web.deps import admin, hub_of, operator, reader

router = APIRouter()

HubDep = Annotated[Hub, Depends(hub_of)]
Reader = Annotated[str, Depends(reader)]
Operator = Annotated[str, Depends(operator)]
Admin = Annotated[str, Depends(admin)]
Replay = Annotated[int, Query(ge=0, le=100_000)]


@router.get(
    "/api/v1/contracts",
    response_model=list[models.ContractSummary],
    response_model_exclude_unset=True,
)
def list_contracts(hub: HubDep, _who: Reader) -> list[dict[str, Any]]:
    return contracts(hub).overview()


@router.get(
    "/api/v1/contracts/{document}",
    response_model=models.Contract,
    response_model_exclude_unset=True,
)
def contract(hub: HubDep, _who: Reader, document: str) -> dict[str, Any]:
    registry = contracts(hub)
    current = registry.current(document)
    return {
        **current.to_json(with_schema=True),
        "history": [v.to_json() for v in registry.history(document)],
    }


@router.post(
    "/api/v1/contracts/{document}/check",
    response_model=models.CompatibilityReport,
    response_model_exclude_unset=True,
)
def check(
    hub: HubDep,
    _who: Operator,
    document: str,
    schema: Annotated[Any, Body()],
    replay: Replay = DEFAULT_REPLAY,
) -> dict[str, Any]:
    """The compatibility report of a proposed schema (the body). ``breaking`` says whether
    anything breaks; the status is 200 either way."""
    return contracts(hub).check(document, schema, replay)


@router.post(
    "/api/v1/contracts/{document}/publish",
    response_model=models.Published,
    response_model_exclude_unset=True,
)
def publish(
    hub: HubDep,
    who: Admin,
    document: str,
    body: Annotated[dict[str, Any], Body()],
) -> dict[str, Any]:
    """Body: ``{"schema": {...}, "force": false, "reason": ""}``. A breaking change without
    force and reason is a 409 carrying the report."""
    if "schema" not in body:
        raise InputError("the body needs 'schema' (and 'force' and 'reason' to force a break)")
    force, reason = body.get("force", False), body.get("reason", "")
    if not isinstance(force, bool) or not isinstance(reason, str):
        raise InputError("'force' must be true or false and 'reason' a string")
    replay = body.get("replay", DEFAULT_REPLAY)
    if not isinstance(replay, int) or isinstance(replay, bool) or replay < 0:
        raise InputError("'replay' must be a whole number, zero or more")
    if force and not reason.strip():
        raise InputError("force needs a reason: say why the break is accepted")
    return contracts(hub).publish(
        document, body["schema"], who, force=force, reason=reason, replay=replay
    )


@router.get(
    "/api/v1/scenarios",
    response_model=models.ScenarioCoverage,
    response_model_exclude_unset=True,
)
def coverage(
    hub: HubDep,
    _who: Reader,
    since: str | None = None,
    until: str | None = None,
    flow: str | None = None,
) -> dict[str, Any]:
    tz = hub.topology.tz
    return scenarios(hub).report(
        parse_time(since, tz, "since") if since else None,
        parse_time(until, tz, "until") if until else None,
        flow,
    )


@router.post(
    "/api/v1/scenarios/release",
    response_model=models.Released,
    response_model_exclude_unset=True,
)
def release(hub: HubDep, who: Operator, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    """Body: ``{"document": ID}`` or ``{"flow": F, "all": true}``."""
    document, flow, everything = body.get("document"), body.get("flow"), body.get("all", False)
    if not all(v is None or isinstance(v, str) for v in (document, flow)) or not isinstance(
        everything, bool
    ):
        raise InputError("'document' and 'flow' are strings, 'all' is true or false")
    return scenarios(hub).release(who, document=document, flow=flow, everything=everything)
