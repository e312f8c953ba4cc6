"""The mapping API's answer, typed for ``/openapi.json`` (see
:mod:`interlink.web.routes.models`: extra fields pass through). Fields are declared in the
order the service writes them, so the answer's key order is kept too."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from interlink.web.routes.models import Answer


class Preview(Answer):
    """A stored document beside the body its flow's map sends for it."""

    flow: str
    document: str
    type: str
    key: str
    revision: int
    scenario: str | None
    original: Any = Field(description="the document as stored")
    mapped: Any = Field(description="the body the flow sends; null when the map cannot map it")
    error: str | None = Field(description="why the map cannot map the document, if it cannot")
    lineage: dict[str, list[str]] = Field(
        description="each downstream field and the document fields it reads"
    )
