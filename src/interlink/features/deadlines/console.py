"""What the deadline watch adds to the console's overview: the documents at risk."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from interlink.errors import NotFound
from interlink.features.deadlines.service import AT_RISK
from interlink.web.console.render import Ctx


def deadlines_at_risk(ctx: Ctx, limit: int = 10) -> list[dict[str, Any]]:
    """Documents the deadline watch reported at risk within its lead time and not delivered
    since (from its ``deadline_at_risk`` events)."""
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
