"""The core API's answers as pydantic models: what ``/openapi.json`` promises, so that a
generated client has typed results.

The handlers still build their answers from the service layer's ``to_json``; these models
describe them. Each allows extra fields (``additionalProperties``), so a field added to an
answer later reaches clients before the model names it, and routes answer with
``response_model_exclude_unset``, so the JSON is the handler's dict, field for field.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Answer(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class DeliveryOutcome(Answer):
    """A delivery as intake created it."""

    flow: str
    status: str = Field(description="pending, held, ...")
    reason: str | None = Field(None, description="the hold's reason when held")


class Submitted(Answer):
    """One accepted (or identical, already stored) document."""

    id: str
    type: str
    key: str
    revision: int
    scenario: str | None = None
    deliveries: list[DeliveryOutcome]
    duplicate: bool = Field(description="true when an identical document was already stored")


class ErrorBody(Answer):
    code: str
    message: str


class BatchItem(Answer):
    """One item of a batch: ``status`` 202 with the document's fields, or its own error."""

    status: int = Field(description="202 accepted, or the status the item alone would get")
    id: str | None = None
    type: str | None = None
    key: str | None = None
    revision: int | None = None
    scenario: str | None = None
    deliveries: list[DeliveryOutcome] | None = None
    duplicate: bool | None = None
    error: ErrorBody | None = None


class Attempt(Answer):
    id: int
    started_at: str | None
    elapsed_ms: float
    status_code: int | None
    outcome: str
    detail: str
    response: str | None
    probe: bool


class Delivery(Answer):
    id: int
    document_id: str
    flow: str
    system: str
    key: str
    revision: int
    status: str = Field(description="pending, in_flight, delivered, held or dead")
    reason: str | None = Field(description="why held or dead")
    attempts: int
    next_at: str | None
    created_at: str | None
    updated_at: str | None
    delivered_at: str | None
    last_error: str | None
    deadline: str | None
    attempt_log: list[Attempt] | None = Field(None, description="on reads of one delivery")


class Document(Answer):
    id: str
    type: str
    key: str
    revision: int
    source: str = Field(description="the system that submitted it")
    scenario: str | None
    deadline: str | None
    amount: str | None
    received_at: str | None
    payload: Any
    deliveries: list[Delivery]


class DocumentPage(Answer):
    items: list[Document]


class DeliveryPage(Answer):
    items: list[Delivery]
    next: int | None = Field(description="pass as `before` for the next page; null at the end")


class RepushResult(Answer):
    count: int
    dry_run: bool
    filter: dict[str, Any]
    sample: list[int] = Field(description="the first 20 ids")


class FlowHoldResult(Answer):
    flow: str
    hold: str | None
    held: int | None = Field(None, description="deliveries held by a pause")
    released: int | None = Field(None, description="deliveries released by a resume")


class FlowHold(Answer):
    reason: str
    since: str | None
    by: str | None
    note: str | None


class FlowStatus(Answer):
    source: str = Field(alias="from")
    to: str
    document: str
    hold: FlowHold | None
    pending: int
    in_flight: int
    held: dict[str, int] = Field(description="reason → count")
    delivered: int
    dead: int


class SystemStatus(Answer):
    circuit: str | None = Field(description="closed, open; null where nothing is delivered")
    opened_at: str | None
    next_probe_at: str | None
    window: dict[str, Any] | None = Field(description="the maintenance window open now")
    role: str = Field(description="upstream, downstream, both or unused")


class Status(Answer):
    flows: dict[str, FlowStatus]
    systems: dict[str, SystemStatus]


class Event(Answer):
    id: int
    at: str
    kind: str
    system: str | None
    flow: str | None
    detail: Any


class EventPage(Answer):
    items: list[Event]


class Health(Answer):
    status: str
    version: str
