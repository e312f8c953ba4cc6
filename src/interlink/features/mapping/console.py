# ruff: noqa: RUF001  (the Chinese words use Chinese punctuation)
"""The map of a flow in the console: ``/flows/{flow}/map`` lists what each downstream field
reads; with ``?document=ID`` it shows that stored document beside the body the map sends."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from interlink.features.mapping.service import NAME, Mapping
from interlink.web.console.render import ConsoleRoute, Ctx, viewer

router = APIRouter(route_class=ConsoleRoute)

# This page's words (the console's catalogue holds the shared ones).
WORDS = {
    "en": {
        "title": "Map",
        "original": "Our document",
        "mapped": "Body sent",
        "lineage": "Lineage: what each downstream field reads",
        "field": "Downstream field",
        "reads": "Reads",
        "document": "Document id",
        "show": "Show",
        "error": "Cannot be mapped; a delivery of it would go dead:",
        "none": "This flow has no map: documents are sent as they are.",
    },
    "zh-CN": {
        "title": "映射",
        "original": "我方单据",
        "mapped": "发送的报文",
        "lineage": "字段血缘：下游每个字段读取的来源字段",
        "field": "下游字段",
        "reads": "来源字段",
        "document": "单据编号",
        "show": "查看",
        "error": "无法映射，该投递将进入死信：",
        "none": "该数据流没有映射：单据按原样发送。",
    },
}


@router.get("/flows/{flow}/map")
def map_page(
    flow: str, ctx: Annotated[Ctx, Depends(viewer)], document: str | None = None
) -> Response:
    words = WORDS.get(ctx.lang, WORDS["en"])
    service: Mapping | None = ctx.hub.capabilities.get(NAME)
    if service is None:
        return ctx.render("not_installed.html", name=NAME, title=words["title"])
    ctx.hub.check_flow(flow)
    lineage: dict[str, list[str]] = {}
    preview: dict[str, Any] | None = None
    if flow in service.compiled:
        lineage = service.lineage(flow)
        if document:
            preview = service.preview(flow, document.strip())
    return ctx.render(
        "map_preview.html",
        flow=flow,
        words=words,
        has_map=flow in service.compiled,
        lineage=lineage,
        document=document or "",
        preview=preview,
    )
