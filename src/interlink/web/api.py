"""The HTTP API (FastAPI): a thin shell over :class:`interlink.service.Hub`.

Every error leaves as ``{"error": {"code", "message", ...}}`` with the status of its
:mod:`interlink.errors` class; a bug answers 500 with no traceback in the body.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import re
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import orjson
from fastapi import Body, Depends, FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from interlink import __version__, tracing
from interlink.config import System
from interlink.errors import (
    InputError,
    InterlinkError,
    Invalid,
    TooLarge,
    Unauthorized,
)
from interlink.features.registry import routers
from interlink.intake import Item
from interlink.metrics import BacklogCollector
from interlink.service import DeliveryFilter, Hub
from interlink.web.boundary import HostPolicy, TrustBoundary, is_loopback
from interlink.web.deps import (
    DocumentReader,
    management_configured,
    operator,
    reader,
    source_system,
)
from interlink.web.routes import apidocs, models
from interlink.web.routes import console as console_routes
from interlink.web.security_headers import SecurityHeaders
from interlink.web.uploads import BodyLimit

log = logging.getLogger("interlink.api")

# The defaults of a whole request body and of a batch's items; the topology's
# `engine.max_request_bytes` and `engine.max_batch_items` set them (docs/api.md, Limits).
MAX_REQUEST_BYTES = 64 * 1024 * 1024
MAX_BATCH_ITEMS = 10_000


def _json(content: Any, status: int) -> Response:
    """Intake's answers, encoded with orjson: the standard library's encoder took a tenth of
    the API's time on batches of 500."""
    return Response(orjson.dumps(content), status_code=status, media_type="application/json")


def _error(exc: InterlinkError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
    return JSONResponse({"error": exc.to_json()}, status_code=exc.http_status, headers=headers)


def _item_result(result: dict[str, Any] | InterlinkError) -> dict[str, Any]:
    if isinstance(result, InterlinkError):
        return {"status": result.http_status, "error": result.to_json()}
    return {"status": 202, **result}


class RepushRequest(BaseModel):
    flow: str | None = None
    status: str | None = Field(None, description="dead (default) or delivered")
    reason: str | None = None
    key: str | None = None
    since: str | None = Field(None, description="ISO 8601; topology time zone if no offset")
    until: str | None = None
    dry_run: bool = False


class HoldRequest(BaseModel):
    note: str = ""


DeliveryId = Annotated[int, Path(ge=1, le=2**63 - 1, description="A delivery's id")]


class DocumentIn(BaseModel):
    """Declared for the OpenAPI document only: intake reads the raw body itself."""

    type: str
    payload: dict[str, Any]


def create_app(
    hub: Hub, *, workers: bool = True, insecure: bool = False, listen_host: str | None = None
) -> FastAPI:
    """The API and console over ``hub``.

    ``insecure`` (``serve --insecure``, loopback only) lets management calls through without
    a token. ``listen_host`` is the address served on (default: the topology's ``listen``);
    with ``allowed_hosts`` it decides which ``Host`` headers are answered.
    """
    topology = hub.topology

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if insecure:
            log.warning(
                "INSECURE (--insecure): management calls (re-push, pause, resume, contract "
                "publish, reads of every system's documents) need no token; anyone who can "
                "reach this address may make them"
            )
        elif not management_configured(topology):
            log.warning(
                "no management credential is set (INTERLINK_ADMIN_TOKEN, or a user's "
                "token_env): management calls are refused to everyone"
            )
        stop = asyncio.Event()
        tasks = []
        if workers:
            tasks.append(asyncio.create_task(hub.engine.run(stop)))
            tasks.extend(asyncio.create_task(loop(stop)) for loop in hub.hooks.background)
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)

    app = FastAPI(
        title="Interlink",
        version=__version__,
        description="Durable intake and reliable delivery between business systems.",
        lifespan=lifespan,
        # FastAPI's own pages load Swagger UI and ReDoc from a CDN; ours serve packaged
        # copies under a strict CSP (interlink.web.routes.apidocs).
        docs_url=None,
        redoc_url=None,
        generate_unique_id_function=operation_id,
        openapi_tags=TAGS,
    )

    @app.exception_handler(InterlinkError)
    async def _on_interlink_error(_request: Request, exc: InterlinkError) -> JSONResponse:
        return _error(exc)

    @app.exception_handler(RequestValidationError)
    async def _on_validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"path": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()
        ]
        body = {"code": "invalid", "message": "the request is not valid", "problems": problems}
        return JSONResponse({"error": body}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _on_http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = "not_found" if exc.status_code == 404 else "http"
        return JSONResponse(
            {"error": {"code": code, "message": str(exc.detail)}}, status_code=exc.status_code
        )

    @app.exception_handler(OverflowError)
    async def _on_overflow(_request: Request, exc: OverflowError) -> JSONResponse:
        # A number past what the database stores (an id of 2**64): bad input, not a bug.
        body = {"code": "bad_request", "message": "a number in the request is out of range"}
        return JSONResponse({"error": body}, status_code=400)

    @app.exception_handler(Exception)
    async def _on_bug(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        body = {"code": "internal", "message": "internal error; the server log has the details"}
        return JSONResponse({"error": body}, status_code=500)

    # -- intake ---------------------------------------------------------------------------

    @app.post(
        "/api/v1/documents",
        status_code=202,
        summary="Submit one document, a JSON array of them, or NDJSON",
        response_model=models.Submitted | list[models.BatchItem],
        responses={
            202: {
                "description": "One document: its result. A batch: one result per item, in "
                "order, each accepted (status 202) or refused on its own"
            }
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "oneOf": [
                                {"$ref": "#/components/schemas/DocumentIn"},
                                {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/DocumentIn"},
                                },
                            ]
                        }
                    },
                    # A stream of lines: raw bytes to a generator (docs/api.md, OpenAPI),
                    # each line a DocumentIn.
                    "application/x-ndjson": {
                        "schema": {
                            "type": "string",
                            "format": "binary",
                            "description": "NDJSON: one DocumentIn object per line",
                        },
                        "x-item-schema": {"$ref": "#/components/schemas/DocumentIn"},
                    },
                },
            }
        },
    )
    async def submit(
        request: Request,
        source: Annotated[System, Depends(source_system)],
        idempotency_key: Annotated[str | None, Header()] = None,
        traceparent: Annotated[
            str | None,
            Header(
                description="W3C Trace Context: the upstream's trace, continued by intake and "
                "every delivery of the documents (a batch's items all share it); an invalid "
                "one is ignored"
            ),
        ] = None,
    ) -> Response:
        limits = topology.engine
        body = await _read_body(request, limits.max_request_bytes)
        items, errors, batch = _parse_documents(
            body, request.headers.get("content-type", ""), limits.max_batch_items
        )
        if batch and idempotency_key is not None:
            raise InputError("Idempotency-Key applies to a single document, not a batch")
        if not batch:
            items[0].idempotency_key = idempotency_key
        results = await hub.intake.submit(source, items, tracing.upstream(traceparent))
        hub.engine.wake(new_work=True)
        if not batch:
            result = results[0]
            if isinstance(result, InterlinkError):
                return _error(result)
            return _json(result, 202)
        merged: list[dict[str, Any] | InterlinkError] = []
        it = iter(results)
        for err in errors:
            merged.append(err if err is not None else next(it))
        out = [_item_result(r) for r in merged]
        accepted = any(not isinstance(r, InterlinkError) for r in merged)
        return _json(out, 202 if accepted else 422)

    # -- documents and deliveries ----------------------------------------------------------

    # A system's token reads what that system submitted; a person's (viewer and up) everything.

    @app.get(
        "/api/v1/documents/{document_id}",
        summary="A document with its deliveries",
        response_model=models.Document,
        response_model_exclude_unset=True,
    )
    def get_document(document_id: str, who: DocumentReader) -> dict[str, Any]:
        return hub.document(document_id, source=who.source).to_json()

    @app.get(
        "/api/v1/documents",
        summary="Documents by business key",
        response_model=models.DocumentPage,
        response_model_exclude_unset=True,
    )
    def find_documents(
        who: DocumentReader,
        key: str,
        type: str | None = None,
    ) -> dict[str, Any]:
        return {"items": [d.to_json() for d in hub.documents(key, type, source=who.source)]}

    @app.get(
        "/api/v1/deliveries",
        summary="Deliveries, newest first, paged by id",
        response_model=models.DeliveryPage,
        response_model_exclude_unset=True,
    )
    def list_deliveries(
        who: DocumentReader,
        flow: str | None = None,
        status: str | None = None,
        reason: str | None = None,
        key: str | None = None,
        since: str | None = None,
        until: str | None = None,
        before: int | None = Query(None, description="the `next` cursor of the previous page"),
        limit: int = Query(100, ge=1, le=1000),
    ) -> dict[str, Any]:
        f = _filter(flow, status, reason, key, since, until)
        items = hub.deliveries(f, before=before, limit=limit, source=who.source)
        return {
            "items": [d.to_json() for d in items],
            "next": items[-1].id if len(items) == limit else None,
        }

    @app.get(
        "/api/v1/deliveries/{delivery_id}",
        summary="A delivery with its attempts",
        response_model=models.Delivery,
        response_model_exclude_unset=True,
    )
    def get_delivery(delivery_id: DeliveryId, who: DocumentReader) -> dict[str, Any]:
        return hub.delivery(delivery_id, source=who.source).to_json(with_attempts=True)

    @app.post(
        "/api/v1/deliveries/{delivery_id}/repush",
        summary="Re-push one delivery",
        response_model=models.Delivery,
        response_model_exclude_unset=True,
    )
    def repush_one(
        delivery_id: DeliveryId, who: Annotated[str, Depends(operator)]
    ) -> dict[str, Any]:
        return hub.repush_one(delivery_id, actor=who).to_json(with_attempts=False)

    @app.post(
        "/api/v1/repush",
        summary="Re-push every delivery matching a filter",
        response_model=models.RepushResult,
        response_model_exclude_unset=True,
    )
    def repush(
        who: Annotated[str, Depends(operator)],
        request: Annotated[RepushRequest, Body()],
    ) -> dict[str, Any]:
        f = _filter(
            request.flow, request.status, request.reason, request.key, request.since, request.until
        )
        return hub.repush(f, actor=who, dry_run=request.dry_run)

    @app.post(
        "/api/v1/flows/{flow}/pause",
        summary="Hold a flow's deliveries",
        response_model=models.FlowHoldResult,
        response_model_exclude_unset=True,
    )
    def pause(
        flow: str,
        who: Annotated[str, Depends(operator)],
        request: Annotated[HoldRequest | None, Body()] = None,
    ) -> dict[str, Any]:
        return hub.pause(flow, actor=who, note=request.note if request else "")

    @app.post(
        "/api/v1/flows/{flow}/resume",
        summary="Release a paused or auth-held flow",
        response_model=models.FlowHoldResult,
        response_model_exclude_unset=True,
    )
    def resume(flow: str, who: Annotated[str, Depends(operator)]) -> dict[str, Any]:
        return hub.resume(flow, actor=who)

    @app.get(
        "/api/v1/status",
        summary="Per flow counts; per system circuit and window",
        response_model=models.Status,
        response_model_exclude_unset=True,
    )
    def status(_who: Annotated[str, Depends(reader)]) -> dict[str, Any]:
        return hub.status()

    @app.get(
        "/api/v1/events",
        summary="Recent engine events (circuit changes, rejections)",
        response_model=models.EventPage,
        response_model_exclude_unset=True,
    )
    def events(
        _who: Annotated[str, Depends(reader)], limit: int = Query(100, ge=1, le=1000)
    ) -> dict[str, Any]:
        return {"items": hub.events(limit)}

    @app.get(
        "/healthz",
        summary="Liveness: the process answers and the store is readable",
        response_model=models.Health,
        response_model_exclude_unset=True,
    )
    def healthz() -> dict[str, Any]:
        hub.store.ping()
        return {"status": "ok", "version": __version__}

    # The backlog gauges belong to this app's hub: a registry of their own, so that apps
    # created side by side (tests, the bench) do not register the same names twice.
    backlog_registry = CollectorRegistry(auto_describe=False)
    backlog_registry.register(BacklogCollector(hub))
    for collector in hub.hooks.collectors:  # the features' gauges (a rollout's stage)
        backlog_registry.register(collector)

    @app.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    def metrics() -> Response:
        text = generate_latest(REGISTRY) + generate_latest(backlog_registry)
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    app.openapi_schema = None
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original()
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            schemas["DocumentIn"] = DocumentIn.model_json_schema()
            schemas["Error"] = ERROR_SCHEMA
            _document_errors(schema)
            _bearer_scheme(schema)
            _tag_untagged(schema)
            _files_as_bytes(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    def _filter(
        flow: str | None,
        status: str | None,
        reason: str | None,
        key: str | None,
        since: str | None,
        until: str | None,
    ) -> DeliveryFilter:
        return DeliveryFilter.parse(
            topology.tz, flow=flow, status=status, reason=reason, key=key, since=since, until=until
        )

    for router in (apidocs.router, console_routes.router, *routers()):
        app.include_router(router)
    # Every body bounded before any route reads it (docs/api.md, Limits).
    app.add_middleware(
        BodyLimit,
        limit=topology.engine.max_request_bytes,
        wide=max(topology.engine.max_request_bytes, topology.engine.max_upload_bytes),
        wide_prefixes=("/api/v1/reconcile/",),
    )
    # Outermost: a request for another host name, or a state change a browser could forge
    # cross-site, is refused before anything else reads it (interlink.web.boundary).
    host = listen_host if listen_host is not None else topology.listen_address()[0]
    if insecure and not is_loopback(host):
        raise InputError(f"insecure mode is allowed only on a loopback address, not {host}")
    app.add_middleware(
        TrustBoundary,
        hosts=HostPolicy(host, topology.allowed_hosts),
        takes_files=_file_routes(app),
    )
    # Around everything, refusals included: CSP, no framing, nosniff, no referrer
    # (interlink.web.security_headers).
    app.add_middleware(SecurityHeaders, https=topology.secure_cookies)
    app.state.hub = hub
    app.state.insecure = insecure
    return app


# -- the OpenAPI document: tags, operation ids, the bearer scheme (docs/api.md, OpenAPI) -----

TAGS: list[dict[str, Any]] = [
    {"name": "documents", "description": "Submit documents and read them back"},
    {"name": "deliveries", "description": "Deliveries, their attempts, and re-push"},
    {"name": "flows", "description": "Pause and resume a flow"},
    {"name": "systems", "description": "Per flow counts, per system circuit and window, events"},
    {"name": "maintenance", "description": "Maintenance windows"},
    {"name": "incidents", "description": "The incident register"},
    {"name": "alerts", "description": "Alert messages sent"},
    {"name": "contracts", "description": "Contracts, change impact and scenarios"},
    {"name": "reconcile", "description": "Reconciliation against a downstream's records"},
    {"name": "files", "description": "Batch files to file-exchange systems and their results"},
    {"name": "sources", "description": "Upstream sources polled for documents, their lag"},
    {"name": "mapping", "description": "A flow's map: the body the downstream receives"},
    {"name": "rollout", "description": "Pilot and full rollout of a flow, the promotion gate"},
    {"name": "changes", "description": "Change notices, who they reach, acknowledgements"},
    {"name": "drills", "description": "Drill reports and go-live readiness"},
    {"name": "admin", "description": "Liveness and Prometheus metrics"},
]
# The first path segment after /api/v1/ → its tag, for routes that declare none.
_TAG_OF = {
    "documents": "documents",
    "deliveries": "deliveries",
    "repush": "deliveries",
    "flows": "flows",
    "status": "systems",
    "events": "systems",
    "contracts": "contracts",
    "scenarios": "contracts",
    "reconcile": "reconcile",
    "healthz": "admin",
    "metrics": "admin",
}
# (method, path) → operationId: the names generated clients give their functions.
OPERATION_IDS = {
    ("POST", "/api/v1/documents"): "submitDocuments",
    ("GET", "/api/v1/documents/{document_id}"): "getDocument",
    ("GET", "/api/v1/documents"): "findDocuments",
    ("GET", "/api/v1/deliveries"): "listDeliveries",
    ("GET", "/api/v1/deliveries/{delivery_id}"): "getDelivery",
    ("POST", "/api/v1/deliveries/{delivery_id}/repush"): "repushDelivery",
    ("POST", "/api/v1/repush"): "repushDeliveries",
    ("POST", "/api/v1/flows/{flow}/pause"): "pauseFlow",
    ("POST", "/api/v1/flows/{flow}/resume"): "resumeFlow",
    ("GET", "/api/v1/status"): "getStatus",
    ("GET", "/api/v1/events"): "listEvents",
    ("GET", "/healthz"): "getHealth",
    ("GET", "/metrics"): "getMetrics",
    ("GET", "/api/v1/alerts"): "listAlerts",
    ("GET", "/api/v1/contracts"): "listContracts",
    ("GET", "/api/v1/contracts/{document}"): "getContract",
    ("POST", "/api/v1/contracts/{document}/check"): "checkContract",
    ("POST", "/api/v1/contracts/{document}/publish"): "publishContract",
    ("GET", "/api/v1/scenarios"): "getScenarioCoverage",
    ("POST", "/api/v1/scenarios/release"): "releaseUnmapped",
    ("GET", "/api/v1/drills/runs"): "listDrillRuns",
    ("GET", "/api/v1/drills/runs/{run_id}"): "getDrillRun",
    ("GET", "/api/v1/readiness"): "getReadiness",
    ("GET", "/api/v1/incidents/export"): "exportIncidents",
    ("GET", "/api/v1/incidents/stats"): "getIncidentStats",
    ("GET", "/api/v1/incidents"): "listIncidents",
    ("POST", "/api/v1/incidents"): "openIncident",
    ("GET", "/api/v1/incidents/{incident_id}"): "getIncident",
    ("PATCH", "/api/v1/incidents/{incident_id}"): "updateIncident",
    ("POST", "/api/v1/incidents/{incident_id}/attachments"): "attachToIncident",
    ("GET", "/api/v1/incidents/{incident_id}/attachments/{attachment_id}"): "getAttachment",
    ("GET", "/api/v1/maintenance"): "listWindows",
    ("POST", "/api/v1/maintenance"): "announceWindow",
    ("GET", "/api/v1/maintenance.ics"): "getMaintenanceCalendar",
    ("GET", "/api/v1/maintenance/{window_id}"): "getWindow",
    ("DELETE", "/api/v1/maintenance/{window_id}"): "cancelWindow",
    ("POST", "/api/v1/reconcile/{flow}"): "runReconcile",
    ("GET", "/api/v1/reconcile/runs"): "listReconcileRuns",
    ("GET", "/api/v1/reconcile/runs/{run_id}"): "getReconcileRun",
    ("POST", "/api/v1/reconcile/runs/{run_id}/repush"): "repushReconcileMissing",
    ("GET", "/api/v1/files"): "listFiles",
    ("GET", "/api/v1/changes"): "listChanges",
    ("POST", "/api/v1/changes"): "announceChange",
    ("GET", "/api/v1/changes/{change_id}"): "getChange",
    ("POST", "/api/v1/changes/{change_id}/ack"): "acknowledgeChange",
    ("POST", "/api/v1/changes/{change_id}/attachments"): "attachToChange",
    ("GET", "/api/v1/changes/{change_id}/attachments/{attachment_id}"): "getChangeAttachment",
    ("GET", "/api/v1/flows/{flow}/map/preview"): "previewMap",
    ("GET", "/api/v1/rollout"): "listRolloutStages",
    ("GET", "/api/v1/flows/{flow}/rollout"): "getFlowRollout",
    ("POST", "/api/v1/flows/{flow}/rollout"): "setRolloutStage",
    ("POST", "/api/v1/flows/{flow}/rollout/promote"): "promoteRollout",
    ("GET", "/api/v1/sources"): "listSources",
    ("GET", "/api/v1/sources/problems"): "listSourceProblems",
    ("POST", "/api/v1/sources/{name}/poll"): "pollSource",
    ("POST", "/api/v1/sources/{name}/pause"): "pauseSource",
    ("POST", "/api/v1/sources/{name}/resume"): "resumeSource",
}
BEARER = "bearerAuth"


def operation_id(route: APIRoute) -> str:
    """The route's operationId: named in :data:`OPERATION_IDS`, else its handler's name in
    camelCase (a route added without a name here still gets a readable one)."""
    for method in sorted(route.methods or ()):
        named = OPERATION_IDS.get((method, route.path_format))
        if named is not None:
            return named
    head, *rest = route.name.split("_")
    return head + "".join(word.capitalize() for word in rest)


def _tag_untagged(schema: dict[str, Any]) -> None:
    """Tag every operation whose router declares no tag by its path, so that none is left
    under ``default``."""
    for path, operations in schema.get("paths", {}).items():
        segment = path.removeprefix("/api/v1/").strip("/").split("/")[0].split(".")[0]
        for operation in operations.values():
            if isinstance(operation, dict) and not operation.get("tags"):
                operation["tags"] = [_TAG_OF.get(segment, "admin")]


def _files_as_bytes(schema: dict[str, Any]) -> None:
    """A file download (``FileResponse``) is declared as ``*/*``, which generators skip:
    declare it as bytes."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                if "*/*" in content:
                    del content["*/*"]
                    content["application/octet-stream"] = {
                        "schema": {"type": "string", "format": "binary"}
                    }


def _bearer_scheme(schema: dict[str, Any]) -> None:
    """Say "Bearer token" once, as a security scheme, instead of an ``Authorization`` header
    parameter on every operation. The dependencies in :mod:`interlink.web.deps` still read
    the header themselves, so a wrong scheme keeps its own 401 message."""
    schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes[BEARER] = {
        "type": "http",
        "scheme": "bearer",
        "description": "A system's token (submits and reads its own documents), a person's "
        "token (their role), or INTERLINK_ADMIN_TOKEN",
    }
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            parameters = operation.get("parameters", [])
            kept = [
                p
                for p in parameters
                if not (p.get("in") == "header" and p.get("name", "").lower() == "authorization")
            ]
            if len(kept) == len(parameters):
                continue
            operation["security"] = [{BEARER: []}]
            if kept:
                operation["parameters"] = kept
            else:
                operation.pop("parameters", None)


def _file_routes(app: FastAPI) -> Callable[[dict[str, Any]], bool]:
    """Whether a request goes to an operation that takes a file: multipart/form-data in its
    request body in the OpenAPI document (read once, on first use)."""
    found: list[tuple[str, re.Pattern[str]]] | None = None

    def takes_files(scope: dict[str, Any]) -> bool:
        nonlocal found
        if found is None:
            found = [
                (method.upper(), compile_path(path)[0])
                for path, operations in app.openapi().get("paths", {}).items()
                for method, operation in operations.items()
                if isinstance(operation, dict)
                and "multipart/form-data" in operation.get("requestBody", {}).get("content", {})
            ]
        method, path = scope.get("method", ""), scope.get("path", "")
        return any(m == method and pattern.match(path) for m, pattern in found)

    return takes_files


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "problems": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "path": {"type": "string"},
                            "message": {"type": "string"},
                        },
                    },
                },
            },
        }
    },
}
_ERRORS = {
    "400": "Bad input: malformed JSON, a bad filter or time, an action not allowed now",
    "401": "No token, or a token nobody holds",
    "403": "A valid token without the right: the message names the role the call needs (a "
    "system's token submits its own types and reads its own documents only)",
    "404": "No such document, delivery, flow or system",
    "409": "Conflicts with what is stored (an Idempotency-Key reused)",
    "413": "Over the size limit",
    "415": "A state-changing call not sent as application/json (NDJSON to intake, "
    "multipart/form-data where a file is uploaded)",
    "422": "Shape or contract violation; `problems` lists each with its JSON path",
    "503": "The store is unavailable; nothing was written",
}


def _document_errors(schema: dict[str, Any]) -> None:
    """Every operation may answer with the error body: say so in the OpenAPI document."""
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    batch = {
        "application/json": {
            "schema": {
                "oneOf": [
                    {"$ref": "#/components/schemas/Error"},
                    {"type": "array", "items": {"$ref": "#/components/schemas/BatchItem"}},
                ]
            }
        }
    }
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for code, text in _ERRORS.items():
                operation["responses"].setdefault(code, {"description": text, "content": ref})
            # FastAPI's own 422 (HTTPValidationError) is answered in our error shape; a batch
            # with nothing accepted answers its per-item results.
            operation["responses"]["422"] = {
                "description": _ERRORS["422"],
                "content": batch if (method, path) == ("post", "/api/v1/documents") else ref,
            }


async def _read_body(request: Request, limit: int = MAX_REQUEST_BYTES) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"request body over {limit} bytes (engine.max_request_bytes)")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"request body over {limit} bytes (engine.max_request_bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


def _too_many(limit: int) -> TooLarge:
    return TooLarge(f"a batch holds at most {limit} documents (engine.max_batch_items); split it")


def _parse_documents(
    body: bytes, content_type: str, max_items: int = MAX_BATCH_ITEMS
) -> tuple[list[Item], list[InterlinkError | None], bool]:
    """Items to submit, a per-position error list (None where an item was parsed), batch?

    A batch over ``max_items`` is refused whole (413) before any item is built: NDJSON is
    counted line by line while it is parsed, an array by its length once decoded.
    """
    if not body.strip():
        raise InputError("empty body: send a JSON document, a JSON array or NDJSON")
    if "ndjson" in content_type or "jsonl" in content_type or "json-seq" in content_type:
        items: list[Item] = []
        errors: list[InterlinkError | None] = []
        # Lines one at a time: a list of every line of a 64 MB body is not built.
        for number, line in enumerate(io.BytesIO(body), start=1):
            if not line.strip():
                continue
            if len(errors) >= max_items:
                raise _too_many(max_items)
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                errors.append(InputError(f"line {number}: malformed JSON: {exc}"))
                continue
            if not isinstance(value, dict):
                errors.append(InputError(f"line {number}: each line must be a JSON object"))
                continue
            errors.append(None)
            items.append(_item(value))
        return items, errors, True
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"malformed JSON: {exc}") from None
    if isinstance(value, dict):
        return [_item(value)], [None], False
    if isinstance(value, list):
        if len(value) > max_items:
            raise _too_many(max_items)
        if not value:
            # Nothing to accept is a batch with nothing accepted: 422, as for a refused batch.
            raise Invalid(
                "the batch is empty: send at least one document",
                [{"path": "$", "message": "the array holds no documents"}],
            )
        items, errors = [], []
        for index, entry in enumerate(value):
            if isinstance(entry, dict):
                items.append(_item(entry))
                errors.append(None)
            else:
                errors.append(InputError(f"item {index}: each document must be a JSON object"))
        return items, errors, True
    raise InputError("the body must be a JSON object, an array of objects, or NDJSON")


def _item(value: dict[str, Any]) -> Item:
    return Item(type=value.get("type"), payload=value.get("payload"))
