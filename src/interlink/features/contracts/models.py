"""The contracts API's answers, typed for ``/openapi.json`` (see
:mod:`interlink.web.routes.models`: extra fields pass through, the JSON stays the handler's
dict). Fields are declared in the order the service writes them, so the answer's key order
is kept too."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from interlink.web.routes.models import Answer


class ContractSummary(Answer):
    document: str
    version: int = Field(description="0 while nothing is published")
    hash: str | None
    file: str | None
    file_differs: bool = Field(description="the topology's schema file is not the published one")
    flows: list[str]


class ContractVersion(Answer):
    document: str
    version: int
    hash: str | None
    published_by: str | None
    published_at: str | None
    reason: str | None
    forced: bool


class Contract(ContractVersion):
    """The current version with its schema, and every published version."""

    # ``schema`` would shadow a BaseModel attribute: the field is named by its alias.
    json_schema: Any = Field(None, alias="schema")
    history: list[ContractVersion]


class CompatibilityReport(Answer):
    document: str
    current: dict[str, Any]
    proposed: dict[str, Any]
    unchanged: bool
    breaking: bool = Field(
        description="true when a consumer, the producer or stored traffic breaks"
    )
    changes: list[dict[str, Any]]
    consumers: list[dict[str, Any]]
    unaffected_flows: Any
    producer: dict[str, Any]
    transitive: list[dict[str, Any]]
    notes: list[dict[str, Any]]
    systems: list[str]
    replay: dict[str, Any] = Field(description="stored documents checked and refused")
    actions: Any


class Published(CompatibilityReport):
    published: bool = Field(description="false when the schema was already the current one")
    version: int


class ScenarioCoverage(Answer):
    documents: Any
    period: dict[str, str | None]
    flow: str | None


class Released(Answer):
    released: int
    flows: dict[str, int] = Field(description="flow → deliveries released")
    documents: list[str] = Field(description="the first 100 document ids")
