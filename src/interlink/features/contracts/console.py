"""Contracts (capability "contracts"): versions per document type, and the impact report of
a proposed schema pasted or uploaded. Checking changes nothing; publishing stays with the CLI
and the API, where a reason is recorded."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.datastructures import UploadFile as StarletteUpload

from interlink.errors import InputError
from interlink.features.contracts.service import NAME as CONTRACTS
from interlink.web.console.render import ConsoleRoute, Ctx, viewer, viewer_form

router = APIRouter(route_class=ConsoleRoute)


def service(ctx: Ctx, name: str) -> Any | None:
    """The feature's service, or None when it is not installed (the page says so)."""
    return ctx.hub.capabilities.get(name)


MAX_SCHEMA_BYTES = 1_048_576


def _missing(ctx: Ctx) -> Response:
    return ctx.render("not_installed.html", name=CONTRACTS, title=ctx.t("nav.contracts"))


@router.get("/contracts")
def contracts_page(ctx: Annotated[Ctx, Depends(viewer)]) -> Response:
    svc = service(ctx, CONTRACTS)
    if svc is None:
        return _missing(ctx)
    return ctx.render("contracts.html", overview=svc.overview())


@router.get("/contracts/{document}")
def document_contract(document: str, ctx: Annotated[Ctx, Depends(viewer)]) -> Response:
    svc = service(ctx, CONTRACTS)
    if svc is None:
        return _missing(ctx)
    current = svc.current(document)
    return ctx.render(
        "contract.html",
        document=document,
        current=current,
        history=svc.history(document),
        schema_text="",
        report=None,
    )


@router.post("/contracts/{document}/check")
async def check(
    document: str, request: Request, ctx: Annotated[Ctx, Depends(viewer_form)]
) -> Response:
    svc = service(ctx, CONTRACTS)
    if svc is None:
        return _missing(ctx)
    from interlink.features.contracts.registry import parse_schema

    form = await request.form()  # read here: a field named "schema" upsets pydantic models
    pasted, upload = form.get("schema"), form.get("file")
    text: str | bytes = pasted if isinstance(pasted, str) else ""
    if isinstance(upload, StarletteUpload) and upload.filename:
        text = await upload.read(MAX_SCHEMA_BYTES + 1)
        if len(text) > MAX_SCHEMA_BYTES:
            raise InputError(f"the schema file is over {MAX_SCHEMA_BYTES} bytes")
    if not text.strip():
        raise InputError("paste a JSON Schema or choose a file")
    report = svc.check(document, parse_schema(text))
    return ctx.render(
        "contract.html",
        document=document,
        current=svc.current(document),
        history=svc.history(document),
        schema_text=text if isinstance(text, str) else text.decode("utf-8", "replace"),
        report=report,
    )
