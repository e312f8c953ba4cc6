"""The sources API's answers, typed for ``/openapi.json`` (see
:mod:`interlink.web.routes.models`: extra fields pass through). Fields are declared in the
order the service writes them, so the answer's key order is kept too."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from interlink.web.routes.models import Answer


class Source(Answer):
    """A source with its cursor and lag."""

    name: str
    system: str
    kind: str = Field(description="outbox, api or files")
    document: str
    interval: float = Field(description="seconds between polls")
    schedule: list[str] = Field(description="times of day it is polled at instead, if any")
    next_poll_at: str | None = Field(description="a scheduled source's next time (UTC)")
    paused: bool
    paused_by: str | None
    cursor: Any = Field(description="where reading goes on: an id, or [updated_at, id]")
    polled_at: str | None
    accepted: int
    refused: int
    problems: int = Field(description="rows intake refused, kept")
    behind: int | None = Field(description="rows (or files) not read yet")
    oldest_unread_age: float | None = Field(description="seconds")
    behind_since: str | None
    error: str | None = Field(description="why the upstream cannot be read")
    unreachable_since: str | None


class SourcePage(Answer):
    items: list[Source]


class SourceProblem(Answer):
    """A row intake refused."""

    id: int
    source: str
    at: str
    ref: str = Field(description="the upstream row's id, or file:line")
    message: str
    problems: list[dict[str, Any]] = Field(description="each with its JSON path")
    row: dict[str, Any] = Field(description="the row as read")


class SourceProblemPage(Answer):
    items: list[SourceProblem]
    next_before: int | None = Field(description="the `before` of the next page")


class SourcePoll(Answer):
    """What one poll read and what became of it; the fields a poll did not reach are left
    out (a paused source answers ``source``, ``paused`` and ``read`` only)."""

    source: str
    paused: bool | None = Field(None, description="left out when the upstream is unreachable")
    read: int
    accepted: int | None = None
    duplicate: int | None = None
    refused: int | None = None
    mark_error: str | None = Field(None, description="the rows are taken, the mark failed")
    file: str | None = Field(None, description="the file taken (files)")
    skipped: str | None = Field(None, description="why the file was not read (files)")
    failed: str | None = Field(None, description="why the file was refused whole (files)")
    cursor: Any = None
    behind: int | None = None
    oldest_unread_at: str | None = None
    error: str | None = Field(None, description="why the upstream cannot be read")


class SourcePaused(Answer):
    source: str
    paused: bool
