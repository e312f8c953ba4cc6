"""What a batch of outcomes does: a pure function from answers to state changes.

:func:`plan` reads the sends of one batch, the circuits as the engine knows them and the flow
holds, and returns a :class:`Plan`: attempts to insert, deliveries to update under their lease,
keys whose next revision may go, circuits to save (new copies: the ones given are left as they
were), flows to hold for bad credentials, events, and the throttles and metric increments the
engine should apply. It touches no store, no clock, no network and no metric; the engine
applies the metrics and throttles, and :mod:`.applier` writes the rest in one transaction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from interlink.config import Flow
from interlink.engine import circuit as breaker
from interlink.engine.circuit import Circuit, CircuitPolicy, Transition
from interlink.engine.outcome import Classified, Outcome
from interlink.engine.retry import RetryPolicy
from interlink.model import DeadReason, DeliveryUpdate, Event, HoldReason, Status


@dataclass(slots=True)
class Job:
    """A leased delivery on its way out."""

    id: int
    document_id: str
    flow: Flow
    key: str
    revision: int
    attempts: int
    failures: int
    first_failure_at: datetime | None
    lease_until: datetime
    probe: bool
    type: str = ""
    body: bytes = b""
    # The document's stored W3C trace context: the attempt's span is its child (tracing).
    traceparent: str | None = None

    # The names holds.Placeable asks for, so a job is placed like any delivery row.
    @property
    def system(self) -> str:
        return self.flow.target


@dataclass(slots=True)
class Sent:
    """One send's answer, classified."""

    job: Job
    started_at: datetime
    elapsed_ms: float
    classified: Classified
    status_code: int | None
    response: str | None


@dataclass
class Plan:
    """What one batch of outcomes does; the store side is applied in one write."""

    attempts: list[dict[str, Any]] = field(default_factory=list)
    updates: list[DeliveryUpdate] = field(default_factory=list)
    delivered_keys: set[tuple[str, str]] = field(default_factory=set)
    circuits: dict[str, Circuit] = field(default_factory=dict)
    """Every circuit this batch changed, as it is after the batch."""
    saved: set[str] = field(default_factory=set)
    """Systems whose circuit goes to the store (a transition, a probe, or still open)."""
    changed: list[str] = field(default_factory=list)
    """Systems whose circuit opened or closed, in order (one may do both in a batch)."""
    auth_flows: dict[str, str] = field(default_factory=dict)
    """flow → detail: hold the flow for its credentials."""
    events: list[Event] = field(default_factory=list)
    throttled: dict[str, datetime] = field(default_factory=dict)
    """flow → send nothing before this (the downstream asked us to slow down)."""
    transitions: list[tuple[str, Transition]] = field(default_factory=list)
    """(system, transition) for the circuit metric."""


def plan(
    sent: list[Sent],
    now: datetime,
    *,
    circuits: Mapping[str, Circuit],
    policy: CircuitPolicy,
    retry: Mapping[str, RetryPolicy],
    flow_holds: Mapping[str, str],
) -> Plan:
    """Decide, for each outcome, the delivery's next state. Pure: ``circuits`` is not changed."""
    out = Plan()

    def circuit(system: str) -> Circuit:
        found = out.circuits.get(system)
        if found is None:
            known = circuits.get(system)
            found = dataclasses.replace(known) if known is not None else Circuit(system=system)
            out.circuits[system] = found
        return found

    for s in sent:
        job, c = s.job, s.classified
        flow = job.flow
        circ = circuit(flow.target)
        if c.outcome == Outcome.LOCAL_ERROR:
            # Nothing reached the downstream, so its circuit learns nothing: no failure
            # counted, no success either. A probe that could not be built frees the
            # probe slot at once, so the next held delivery probes in its place.
            transition = Transition.NONE
            if job.probe:
                circ.probing = False
        else:
            transition = breaker.record(circ, policy, c.outcome, now, probe=job.probe)
        if transition != Transition.NONE:
            out.saved.add(flow.target)
            out.changed.append(flow.target)
            out.transitions.append((flow.target, transition))
            out.events.append(
                Event(
                    f"circuit_{transition.value}",
                    {"failures": circ.failures, "detail": c.detail, "delivery": job.id},
                    system=flow.target,
                )
            )
        elif job.probe or circ.is_open:
            out.saved.add(flow.target)
        out.attempts.append(
            {
                "delivery_id": job.id,
                "started_at": s.started_at,
                "elapsed_ms": s.elapsed_ms,
                "status_code": s.status_code,
                "outcome": c.outcome.value,
                "detail": c.detail,
                "response": s.response,
                "probe": job.probe,
            }
        )
        update = DeliveryUpdate(
            id=job.id,
            lease_until=job.lease_until,
            flow=flow.name,
            system=flow.target,
            status=Status.PENDING,
            reason=None,
            attempts=job.attempts + 1,
            failures=job.failures,
            first_failure_at=job.first_failure_at,
            next_at=None,
            delivered_at=None,
            last_error=None,
            updated_at=now,
        )
        outcome = c.outcome
        if c.delivered:
            update.status, update.delivered_at = Status.DELIVERED, now
            update.failures, update.first_failure_at = 0, None
            if flow.ordered:
                out.delivered_keys.add((flow.name, job.key))
        elif outcome in (Outcome.REJECTED, Outcome.LOCAL_ERROR):
            reason = DeadReason.REJECTED if outcome == Outcome.REJECTED else DeadReason.LOCAL_ERROR
            update.status, update.reason, update.last_error = Status.DEAD, reason, c.detail
            out.events.append(
                Event(
                    f"delivery_{reason.value}",
                    {"delivery": job.id, "detail": c.detail},
                    system=flow.target,
                    flow=flow.name,
                )
            )
        elif outcome == Outcome.UNAUTHORIZED:
            update.status, update.reason, update.last_error = (
                Status.HELD,
                HoldReason.AUTH,
                c.detail,
            )
            if flow.name not in flow_holds and flow.name not in out.auth_flows:
                out.auth_flows[flow.name] = c.detail
        elif outcome == Outcome.UNAVAILABLE and circ.is_open:
            # Held, not failed: a down system spends no retry budget.
            update.status, update.reason, update.last_error = (
                Status.HELD,
                HoldReason.DOWNSTREAM_DOWN,
                c.detail,
            )
        else:  # unavailable (circuit closed) or throttled: retry on schedule
            when, failures, first = _retry(job, c, retry[flow.name], now)
            if outcome == Outcome.THROTTLED and when is not None:
                # The flow slows down: nothing more goes out before the downstream's time.
                out.throttled[flow.name] = max(when, out.throttled.get(flow.name, when))
            update.failures, update.first_failure_at, update.last_error = (
                failures,
                first,
                c.detail,
            )
            if when is None:
                update.status, update.reason = Status.DEAD, DeadReason.GAVE_UP
                out.events.append(
                    Event(
                        "delivery_gave_up",
                        {"delivery": job.id, "detail": c.detail},
                        system=flow.target,
                        flow=flow.name,
                    )
                )
            else:
                update.next_at = when
        out.updates.append(update)
    return out


def _retry(
    job: Job, c: Classified, policy: RetryPolicy, now: datetime
) -> tuple[datetime | None, int, datetime]:
    """When to try again (None: give up), the failures to count, and the first failure."""
    first = job.first_failure_at or now
    if c.outcome == Outcome.THROTTLED and c.retry_after is not None:
        # The downstream's own time, without spending a failure; still within give_up_after.
        when: datetime | None = now + timedelta(seconds=max(c.retry_after, 0.0))
        if when is not None and when > first + policy.give_up_after:
            when = None
        return when, job.failures, first
    failures = job.failures + 1
    return policy.next_attempt(failures, first, now, c.retry_after), failures, first
