"""Change notices (capability "changes"): the list with the announce form, each change with
what it touches and why and who has and hasn't acknowledged it, and the public page a
personal link opens. Every rule is the changes service's; this page shows what it says.

Descriptions are markdown rendered without raw HTML (markdown-it's ``js-default``: HTML in
the text is shown as text, ``javascript:`` links are dropped) and without images, so a
description can neither run script nor load from another host.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import HTMLResponse
from markdown_it import MarkdownIt
from markupsafe import Markup

from interlink.errors import InputError
from interlink.features.changes.impact import KINDS
from interlink.features.changes.service import NAME as CHANGES
from interlink.features.changes.service import changes
from interlink.features.contracts.registry import parse_schema
from interlink.features.incidents.service import MAX_ATTACHMENT_BYTES
from interlink.times import parse_time
from interlink.web import downloads
from interlink.web.console.auth import csrf_ok
from interlink.web.console.i18n import LANGUAGES, pick_language, translate
from interlink.web.console.render import (
    TEMPLATES,
    ConsoleRoute,
    Ctx,
    Refused,
    local_time,
    operator_form,
    viewer,
)
from interlink.web.uploads import FORM_OVERHEAD, file_of, read_form

router = APIRouter(route_class=ConsoleRoute)

_MARKDOWN = MarkdownIt("js-default").disable("image")


def markdown(text: str) -> Markup:
    """Markdown to HTML a page may include: raw HTML escaped, unsafe links dropped."""
    return Markup(_MARKDOWN.render(text or ""))  # noqa: S704 - html is off: the output is safe


def _names(text: str) -> list[str]:
    return [p for p in re.split(r"[\s,]+", text.strip()) if p]


def _missing(ctx: Ctx) -> Response:
    return ctx.render("not_installed.html", name=CHANGES, title=ctx.t("nav.changes"))


@router.get("/changes")
def changes_page(ctx: Annotated[Ctx, Depends(viewer)], system: str | None = None) -> Response:
    svc = ctx.hub.capabilities.get(CHANGES)
    if svc is None:
        return _missing(ctx)
    return ctx.render(
        "changes.html",
        items=svc.search(system=system or None, limit=200),
        system=system or "",
        systems=list(ctx.hub.topology.systems),
        kinds=KINDS,
    )


@router.post("/changes")
async def announce(request: Request, ctx: Annotated[Ctx, Depends(viewer)]) -> Response:
    # The session and the role are checked before a byte of the upload is read; the form
    # (with its CSRF token) is read afterwards, at most the attachment limit.
    ctx.require("operator")
    form = await read_form(request, MAX_ATTACHMENT_BYTES + FORM_OVERHEAD, what="a change")
    try:
        token = form.get("csrf")
        if not csrf_ok(ctx.session, token if isinstance(token, str) else None):
            raise Refused("error.csrf")
        svc = ctx.hub.capabilities.get(CHANGES)
        if svc is None:
            return _missing(ctx)
        values = {k: v for k, v in form.items() if isinstance(v, str)}
        schema_text = values.get("schema", "").strip()
        file = file_of(form)
        files = []
        if file is not None and file.filename:
            files.append((file.filename, await file.read(MAX_ATTACHMENT_BYTES + 1)))
        at = values.get("at", "")
        if not at:
            raise InputError("say when the change ships")
        created = svc.announce(
            values.get("system", ""),
            title=values.get("title", ""),
            at=parse_time(at, ctx.hub.topology.tz, "at"),
            kind=values.get("kind", ""),
            actor=ctx.actor,
            description=values.get("description", ""),
            fields=_names(values.get("fields", "")),
            codes=_names(values.get("codes", "")),
            schema=parse_schema(schema_text) if schema_text else None,
            document=values.get("document") or None,
            attachments=files,
        )
    finally:
        await form.close()
    return ctx.redirect(f"/changes/{created['id']}")


@router.get("/changes/{change_id}")
def change_page(change_id: int, ctx: Annotated[Ctx, Depends(viewer)]) -> Response:
    svc = ctx.hub.capabilities.get(CHANGES)
    if svc is None:
        return _missing(ctx)
    item = svc.get(change_id)
    return ctx.render("change.html", item=item, description=markdown(item["description"]))


@router.post("/changes/{change_id}/ack")
def acknowledge(
    change_id: int,
    ctx: Annotated[Ctx, Depends(operator_form)],
    recipient: Annotated[int, Form()],
) -> Response:
    """A signed-in operator records a recipient's acknowledgement (told in person)."""
    svc = ctx.hub.capabilities.get(CHANGES)
    if svc is None:
        return _missing(ctx)
    svc.acknowledge(change_id, recipient, ctx.actor)
    return ctx.redirect(f"/changes/{change_id}")


@router.get("/changes/{change_id}/attachments/{attachment_id}")
def attachment(
    change_id: int, attachment_id: int, ctx: Annotated[Ctx, Depends(viewer)]
) -> Response:
    svc = ctx.hub.capabilities.get(CHANGES)
    if svc is None:
        return _missing(ctx)
    return downloads.attachment(*svc.attachment(change_id, attachment_id), view=True)


# -- the personal link: no sign-in, the signed token is the credential -------------------------


def _public(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    lang = pick_language(
        request.query_params.get("lang"), None, request.headers.get("accept-language")
    )
    hub = request.app.state.hub
    html = TEMPLATES.get_template(template).render(
        t=lambda key, **v: translate(lang, key, **v),
        w=lambda group, code: code or "",
        fmt=lambda value: local_time(value, hub.topology.tz),
        lang=lang,
        languages=LANGUAGES,
        session=None,
        ctx=None,
        capabilities={},
        msg=None,
        path=request.url.path,
        zone="",
        **values,
    )
    return HTMLResponse(html, status_code=status)


@router.get("/changes/{change_id}/ack/{recipient_id}")
def link_page(change_id: int, recipient_id: int, request: Request, token: str = "") -> Response:
    """What the link in the mail opens: the change, and a button to confirm reading it (a
    GET changes nothing, so a mail scanner following the link acknowledges nothing)."""
    hub = request.app.state.hub
    svc = changes(hub)
    recipient = svc.check_link(change_id, recipient_id, token)
    item = svc.get(change_id)
    return _public(
        request,
        "change_ack.html",
        item=item,
        recipient=recipient,
        token=token,
        description=markdown(item["description"]),
        done=False,
    )


@router.post("/changes/{change_id}/ack/{recipient_id}")
def link_acknowledge(
    change_id: int, recipient_id: int, request: Request, token: Annotated[str, Form()] = ""
) -> Response:
    hub = request.app.state.hub
    svc = changes(hub)
    item = svc.acknowledge_link(change_id, recipient_id, token)
    recipient = next(r for r in item["recipients"] if r["id"] == recipient_id)
    return _public(
        request,
        "change_ack.html",
        item=item,
        recipient=recipient,
        token="",
        description=markdown(item["description"]),
        done=True,
    )


# -- sections for other pages ---------------------------------------------------------------------


def recent_changes(ctx: Ctx, limit: int = 200) -> list[dict[str, Any]]:
    """The latest changes (each with its ``system`` and the ``systems`` it touches), for the
    systems page to list under each system."""
    return changes(ctx.hub).search(limit=limit)


def calendar_entries(hub: Any) -> list[dict[str, Any]]:
    """Every change as a calendar entry, for the maintenance calendar and its iCalendar feed
    (given the hub: the feed has no console request)."""
    return changes(hub).calendar()
