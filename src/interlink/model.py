"""Domain objects: documents, deliveries, attempts, and the words for their states.

The store turns rows into these; the API, console and CLI turn these into JSON and tables.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    DELIVERED = "delivered"
    HELD = "held"
    DEAD = "dead"


class HoldReason(StrEnum):
    MAINTENANCE = "maintenance"
    DOWNSTREAM_DOWN = "downstream_down"
    AUTH = "auth"
    PAUSED = "paused"
    BLOCKED = "blocked"
    UNMAPPED_SCENARIO = "unmapped_scenario"
    ROLLOUT = "rollout"  # outside a flow's pilot, until its stage lets the document in
    BATCHED = "batched"  # a file-exchange system: waiting for the next batch file
    AWAITING_RESULT = "awaiting_result"  # sent in a batch file, waiting for its result file


class DeadReason(StrEnum):
    REJECTED = "rejected"
    GAVE_UP = "gave_up"
    LOCAL_ERROR = "local_error"  # the request could not be built or signed on our side


class CircuitState(StrEnum):
    """A downstream system's circuit breaker (engine.circuit); the store keeps its text."""

    CLOSED = "closed"
    OPEN = "open"


@dataclass(frozen=True, slots=True)
class Event:
    """One entry for the ``events`` table: what happened, to which system and flow."""

    kind: str
    detail: dict[str, Any]
    system: str | None = None
    flow: str | None = None

    def as_dict(self, at: datetime) -> dict[str, Any]:
        """The shape event listeners receive (hooks.EventListener)."""
        return {
            "at": at,
            "kind": self.kind,
            "detail": self.detail,
            "system": self.system,
            "flow": self.flow,
        }


@dataclass(slots=True)
class DeliveryUpdate:
    """A leased delivery's next state after one attempt; applied only under its lease
    (``id`` and ``lease_until`` select the row, the rest is written)."""

    id: int
    lease_until: datetime
    flow: str
    system: str
    status: Status
    reason: HoldReason | DeadReason | None
    attempts: int
    failures: int
    first_failure_at: datetime | None
    next_at: datetime | None
    delivered_at: datetime | None
    last_error: str | None
    updated_at: datetime
    probe: bool = False


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(slots=True)
class Attempt:
    id: int
    delivery_id: int
    started_at: datetime
    elapsed_ms: float
    status_code: int | None
    outcome: str
    detail: str
    response: str | None
    probe: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "started_at": _iso(self.started_at),
            "elapsed_ms": round(self.elapsed_ms, 2),
            "status_code": self.status_code,
            "outcome": self.outcome,
            "detail": self.detail,
            "response": self.response,
            "probe": self.probe,
        }


@dataclass(slots=True)
class Delivery:
    id: int
    document_id: str
    flow: str
    system: str
    key: str
    revision: int
    status: str
    reason: str | None
    attempts: int
    failures: int
    next_at: datetime | None
    lease_until: datetime | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None
    last_error: str | None
    deadline: datetime | None = None
    attempt_log: list[Attempt] = field(default_factory=list)

    @property
    def state(self) -> str:
        """``held: maintenance``-style label used in tables and messages."""
        return f"{self.status}: {self.reason}" if self.reason else self.status

    def to_json(self, with_attempts: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "document_id": self.document_id,
            "flow": self.flow,
            "system": self.system,
            "key": self.key,
            "revision": self.revision,
            "status": self.status,
            "reason": self.reason,
            "attempts": self.attempts,
            "next_at": _iso(self.next_at),
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "delivered_at": _iso(self.delivered_at),
            "last_error": self.last_error,
            "deadline": _iso(self.deadline),
        }
        if with_attempts:
            body["attempt_log"] = [a.to_json() for a in self.attempt_log]
        return body


@dataclass(slots=True)
class Document:
    id: str
    type: str
    key: str
    revision: int
    source: str
    payload_text: str
    payload_hash: str
    identity: str
    scenario: str | None
    deadline: datetime | None
    amount: str | None
    received_at: datetime
    deliveries: list[Delivery] = field(default_factory=list)

    @property
    def payload(self) -> Any:
        return json.loads(self.payload_text)

    def to_json(self, with_deliveries: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "key": self.key,
            "revision": self.revision,
            "source": self.source,
            "scenario": self.scenario,
            "deadline": _iso(self.deadline),
            "amount": self.amount,
            "received_at": _iso(self.received_at),
            "payload": self.payload,
        }
        if with_deliveries:
            body["deliveries"] = [d.to_json(with_attempts=True) for d in self.deliveries]
        return body
