"""The incident register's answers, typed for ``/openapi.json`` (see
:mod:`interlink.web.routes.models`: extra fields pass through). Fields are declared in the
order the service writes them, so the answer's key order is kept too."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from interlink.web.routes.models import Answer


class Incident(Answer):
    id: int
    title: str
    description: str | None
    category: str
    severity: str
    status: str
    registered_at: str | None
    registered_by: str | None
    assignee: str | None
    systems: list[str]
    flows: list[str]
    documents: list[str]
    resolution: str | None
    resolved_at: str | None
    resolved_by: str | None
    source_key: str | None = Field(description="the alert problem that opened it, if any")
    occurrences: int | None
    last_seen_at: str | None


class TimelineEntry(Answer):
    at: str | None
    actor: str | None
    kind: str
    text: str | None


class Attachment(Answer):
    id: int
    filename: str
    content_type: str
    size: int
    sha256: str


class AttachmentInfo(Attachment):
    at: str | None
    by: str | None


class IncidentDetail(Incident):
    timeline: list[TimelineEntry]
    attachments: list[AttachmentInfo]


class IncidentPage(Answer):
    items: list[Incident]


class IncidentStats(Answer):
    total: int
    open: int
    by_status: dict[str, int]
    mttr_hours: float | None = Field(description="mean time to resolve; null when none is")
    mttr_hours_by_system: dict[str, float | None]
    mttr_hours_by_category: dict[str, float | None]
    open_by_system: dict[str, int]
    recurring: list[dict[str, Any]] = Field(description="the ten most frequent problems")
