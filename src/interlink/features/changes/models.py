"""Change notices' answers, typed for ``/openapi.json`` (see
:mod:`interlink.web.routes.models`: extra fields pass through). Fields are declared in the
order the service writes them, so the answer's key order is kept too."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from interlink.web.routes.models import Answer


class Change(Answer):
    id: int
    system: str = Field(description="the system the change belongs to")
    title: str
    kind: str = Field(description="release, contract, codes, scenario or config")
    at: str = Field(description="when it ships (UTC)")
    at_local: str
    created_at: str | None
    created_by: str | None
    systems: list[str] = Field(description="the other systems it touches")
    flows: list[str] = Field(description="the flows it touches")
    recipients_total: int
    acknowledged: int
    unacknowledged: list[str] = Field(description="who has not acknowledged yet")


class AffectedFlow(Answer):
    flow: str
    from_: str = Field(alias="from")
    to: str
    system: str = Field(description="the system told about this flow")
    reasons: list[str]


class Recipient(Answer):
    id: int
    system: str
    role: str
    name: str | None
    email: str | None
    channel: str
    notified_at: str | None
    notify_error: str | None
    reminded_at: str | None
    acknowledged_at: str | None
    acknowledged_by: str | None


class ChangeAttachment(Answer):
    id: int
    filename: str
    content_type: str
    size: int
    sha256: str


class ChangeAttachmentInfo(ChangeAttachment):
    at: str | None
    by: str | None


class ChangeDetail(Change):
    description: str = Field(description="markdown")
    subject: dict[str, Any] = Field(description="fields, codes, document and schema weighed")
    affected: list[AffectedFlow]
    recipients: list[Recipient]
    attachments: list[ChangeAttachmentInfo]


class ChangePage(Answer):
    items: list[Change]
