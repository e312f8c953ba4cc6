"""The alerts API's answers, typed for ``/openapi.json`` (see :mod:`interlink.web.routes.models`:
extra fields pass through, the JSON stays the handler's dict)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from interlink.web.routes.models import Answer


class Alert(Answer):
    id: int
    at: str
    rule: str | None
    kind: str | None
    system: str | None
    flow: str | None
    recipients: Any
    channel: str | None
    target: str | None
    subject: str | None
    body: str | None
    count: int | None
    status: str = Field(description="pending, sent, failed or unrouted")
    attempts: int | None
    next_at: str | None
    sent_at: str | None
    error: str | None


class AlertPage(Answer):
    items: list[Alert]
