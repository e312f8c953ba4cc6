"""Documents: find by business key; one document with its revisions, and per flow the
attempts; re-push one delivery."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Response

from interlink.errors import NotFound
from interlink.model import Status
from interlink.web.console.render import ConsoleRoute, Ctx, operator_form, viewer

router = APIRouter(route_class=ConsoleRoute)

# Delivery ids are 64-bit: a larger number pasted into an address names no delivery, on every
# store alike (PostgreSQL would refuse to compare it, SQLite to bind it).
MAX_ID = 2**63 - 1


def _known(delivery_id: int) -> int:
    if not 0 < delivery_id <= MAX_ID:
        raise NotFound(f"no delivery {delivery_id}")
    return delivery_id


@router.get("/documents")
def find(ctx: Annotated[Ctx, Depends(viewer)], key: str = "", type: str = "") -> Response:
    key = key.strip()
    found = ctx.hub.documents(key, type.strip() or None) if key else []
    if len(found) == 1:
        return ctx.redirect(f"/documents/{found[0].id}")
    return ctx.render("documents.html", key=key, type=type, found=found)


@router.get("/documents/{document_id}")
def document_page(document_id: str, ctx: Annotated[Ctx, Depends(viewer)]) -> Response:
    doc = ctx.hub.document(document_id)
    revisions = ctx.hub.documents(doc.key, doc.type)
    audit = {d.id: ctx.hub.audit(target=f"delivery:{d.id}", limit=20) for d in doc.deliveries}
    return ctx.render("document.html", doc=doc, revisions=revisions, audit=audit)


@router.get("/deliveries/{delivery_id}")
def delivery_page(delivery_id: int, ctx: Annotated[Ctx, Depends(viewer)]) -> Response:
    d = ctx.hub.delivery(_known(delivery_id))
    return ctx.redirect(f"/documents/{d.document_id}#delivery-{d.id}")


@router.post("/deliveries/{delivery_id}/repush")
def repush_one(
    delivery_id: int,
    ctx: Annotated[Ctx, Depends(operator_form)],
    again: Annotated[str, Form()] = "",
) -> Response:
    """Re-push one delivery. A delivered one is sent again only when the form says ``again``
    (the downstream has it already: a payment order sent twice is paid twice unless the
    downstream honours the idempotency key), so one click never does it: without ``again``
    the answer is a page that asks, with nothing changed."""
    found = ctx.hub.delivery(_known(delivery_id))
    if found.status == Status.DELIVERED and again != "1":
        return ctx.render("repush_again.html", d=found)
    d = ctx.hub.repush_one(delivery_id, actor=ctx.actor)
    return ctx.redirect(
        f"/documents/{d.document_id}", msg="repush.one_done", id=d.id, state=d.state
    )
