"""What the capabilities add to other pages (the overview's lists, the systems page's
windows), read from their services when they are installed, and nothing when they are not.
No rule lives here: each function only asks a service and shapes nothing but the list."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from interlink.errors import NotFound
from interlink.web.console.render import Ctx

MAINTENANCE = "maintenance"
INCIDENTS = "incidents"
CONTRACTS = "contracts"


def service(ctx: Ctx, name: str) -> Any | None:
    """The capability's service, or None when it is not installed."""
    return ctx.hub.capabilities.get(name)


def upcoming_windows(ctx: Ctx) -> list[dict[str, Any]]:
    """Open and upcoming maintenance windows (``active`` set on the open ones)."""
    svc = service(ctx, MAINTENANCE)
    if svc is None:
        return []
    return [{**w, "active": w["state"] == "active"} for w in svc.windows()]


def open_incidents(ctx: Ctx, limit: int = 10) -> list[dict[str, Any]]:
    svc = service(ctx, INCIDENTS)
    if svc is None:
        return []
    from interlink.ops.incidents import IncidentFilter

    found = []
    for status in ("open", "investigating"):
        found += svc.search(IncidentFilter(status=status), limit=limit)
    return sorted(found, key=lambda i: i["id"], reverse=True)[:limit]


def deadlines_at_risk(ctx: Ctx, limit: int = 10) -> list[dict[str, Any]]:
    """Documents the deadline watch reported at risk within its lead time and not delivered
    since (from its ``deadline_at_risk`` events)."""
    if "deadlines" not in ctx.hub.capabilities:
        return []
    from interlink.ops.deadlines import AT_RISK  # the deadline watch's event kind

    now = ctx.hub.clock.now()
    lead = ctx.hub.topology.alerts.deadline_warning
    items: list[dict[str, Any]] = []
    for event in ctx.hub.events(limit=200):
        if event["kind"] != AT_RISK or datetime.fromisoformat(event["at"]) < now - lead:
            continue
        for doc in event["detail"].get("documents", []):
            items.append({**doc, "flow": event["flow"]})
    current = []
    for item in items[: limit * 3]:
        try:
            d = ctx.hub.delivery(int(item["delivery_id"]))
        except NotFound:  # pruned since; nothing to show
            continue
        if d.status != "delivered":
            current.append({**item, "status": d.status, "reason": d.reason})
    return current[:limit]
