"""The maintenance API's answers, typed for ``/openapi.json`` (see
:mod:`interlink.web.routes.models`: extra fields pass through). Fields are declared in the
order the service writes them, so the answer's key order is kept too."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from interlink.web.routes.models import Answer


class Window(Answer):
    id: int
    system: str
    start: str
    end: str
    start_local: str
    end_local: str
    reason: str
    short_notice: bool
    state: str
    created_at: str | None
    created_by: str | None
    cancelled_at: str | None
    affected_flows: list[dict[str, Any]]


class WindowPage(Answer):
    items: list[Window]


class AnnouncedWindow(Window):
    checks: dict[str, Any] = Field(description="warnings, expected backlog, deadlines, ...")


class WindowCheck(Answer):
    """A dry run: what announcing the window would find, nothing announced."""

    dry_run: bool
