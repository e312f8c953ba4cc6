"""What the features add to other pages (the overview's lists, the systems page's windows):
each asks the registry for the installed feature's section, and is empty when none is
installed. No rule lives here."""

from __future__ import annotations

from typing import Any

from interlink.features.registry import section
from interlink.web.console.render import Ctx


def _section(ctx: Ctx, name: str, **kwargs: Any) -> list[dict[str, Any]]:
    found = section(ctx.hub, name)
    return found(ctx, **kwargs) if found is not None else []


def upcoming_windows(ctx: Ctx) -> list[dict[str, Any]]:
    """Open and upcoming maintenance windows (``active`` set on the open ones)."""
    return _section(ctx, "upcoming_windows")


def open_incidents(ctx: Ctx, limit: int = 10) -> list[dict[str, Any]]:
    return _section(ctx, "open_incidents", limit=limit)


def rollout_stage(ctx: Ctx, flow: str) -> dict[str, Any] | None:
    """The flow's rollout stage (pilot, full, off), None when it has no rollout."""
    found = _section(ctx, "rollout_stage", flow=flow)
    return found[0] if found else None


def deadlines_at_risk(ctx: Ctx, limit: int = 10) -> list[dict[str, Any]]:
    """Documents reported at risk within the lead time and not delivered since."""
    return _section(ctx, "deadlines_at_risk", limit=limit)


def recent_changes(ctx: Ctx, limit: int = 200) -> list[dict[str, Any]]:
    """The latest announced changes, each with its ``system`` and the ``systems`` it touches."""
    return _section(ctx, "recent_changes", limit=limit)
