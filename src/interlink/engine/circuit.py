"""A circuit breaker per downstream system.

After ``threshold`` unavailable answers in a row the circuit opens: the engine holds that
system's deliveries (``downstream_down``) instead of burning their retries, and sends one probe
at a time, backing off between failed probes, until the system answers again. A pure state
machine over plain data, so the store can persist it and tests need no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from interlink.engine.outcome import Outcome
from interlink.model import CircuitState


class Transition(StrEnum):
    OPENED = "opened"
    CLOSED = "closed"
    NONE = "none"


@dataclass
class Circuit:
    system: str
    state: CircuitState = CircuitState.CLOSED
    failures: int = 0
    """Consecutive unavailable answers."""
    opened_at: datetime | None = None
    next_probe_at: datetime | None = None
    probe_interval: timedelta | None = None
    """The current wait between probes; doubles after each failed probe."""
    probing: bool = False
    """A probe is in flight; no second one until it reports."""

    @property
    def is_open(self) -> bool:
        """Its system's deliveries are held (``downstream_down``): the one test for it."""
        return self.state == CircuitState.OPEN


@dataclass(frozen=True)
class CircuitPolicy:
    threshold: int = 5
    probe_interval: timedelta = timedelta(seconds=5)
    probe_max: timedelta = timedelta(minutes=5)


def record(
    circuit: Circuit, policy: CircuitPolicy, outcome: Outcome, now: datetime, probe: bool = False
) -> Transition:
    """Feed one delivery outcome to the circuit; says whether it opened or closed."""
    unavailable = outcome == Outcome.UNAVAILABLE
    if circuit.state == CircuitState.CLOSED:
        if not unavailable:
            # Any answer, even a refusal, shows the system is up.
            circuit.failures = 0
            return Transition.NONE
        circuit.failures += 1
        if circuit.failures < policy.threshold:
            return Transition.NONE
        circuit.state = CircuitState.OPEN
        circuit.opened_at = now
        circuit.probe_interval = policy.probe_interval
        circuit.next_probe_at = now + policy.probe_interval
        circuit.probing = False
        return Transition.OPENED

    if not unavailable:
        # A probe's answer, or a straggler sent before the circuit opened: either way the
        # system is evidently back.
        _close(circuit)
        return Transition.CLOSED
    if not probe:
        # A straggler's failure says nothing new; the probe schedule stands.
        return Transition.NONE
    circuit.failures += 1
    interval = min((circuit.probe_interval or policy.probe_interval) * 2, policy.probe_max)
    circuit.probe_interval = interval
    circuit.next_probe_at = now + interval
    circuit.probing = False
    return Transition.NONE


def probe_due(circuit: Circuit, now: datetime) -> bool:
    """True when an open circuit should send its next probe."""
    return (
        circuit.state == CircuitState.OPEN
        and not circuit.probing
        and circuit.next_probe_at is not None
        and circuit.next_probe_at <= now
    )


def start_probe(circuit: Circuit) -> None:
    circuit.probing = True


def _close(circuit: Circuit) -> None:
    circuit.state = CircuitState.CLOSED
    circuit.failures = 0
    circuit.opened_at = None
    circuit.next_probe_at = None
    circuit.probe_interval = None
    circuit.probing = False
