from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from interlink.clock import FakeClock
from interlink.engine.circuit import (
    Circuit,
    CircuitPolicy,
    CircuitState,
    Transition,
    probe_due,
    record,
    start_probe,
)
from interlink.engine.outcome import Outcome

POLICY = CircuitPolicy(
    threshold=3, probe_interval=timedelta(seconds=5), probe_max=timedelta(seconds=30)
)
ANSWERS = [
    Outcome.DELIVERED,
    Outcome.DUPLICATE,
    Outcome.REJECTED,
    Outcome.UNAUTHORIZED,
    Outcome.THROTTLED,
]


def opened(clock: FakeClock) -> Circuit:
    circuit = Circuit("erp")
    for _ in range(POLICY.threshold):
        record(circuit, POLICY, Outcome.UNAVAILABLE, clock.now())
    assert circuit.state is CircuitState.OPEN
    return circuit


def test_defaults() -> None:
    policy = CircuitPolicy()
    assert (policy.threshold, policy.probe_interval, policy.probe_max) == (
        5,
        timedelta(seconds=5),
        timedelta(minutes=5),
    )
    circuit = Circuit("erp")
    assert circuit.state is CircuitState.CLOSED
    assert circuit.failures == 0


def test_opens_at_threshold() -> None:
    clock = FakeClock()
    circuit = Circuit("erp")
    assert record(circuit, POLICY, Outcome.UNAVAILABLE, clock.now()) is Transition.NONE
    assert record(circuit, POLICY, Outcome.UNAVAILABLE, clock.now()) is Transition.NONE
    assert circuit.failures == 2
    assert circuit.state is CircuitState.CLOSED
    clock.advance(1)
    assert record(circuit, POLICY, Outcome.UNAVAILABLE, clock.now()) is Transition.OPENED
    assert circuit.state is CircuitState.OPEN
    assert circuit.opened_at == clock.now()
    assert circuit.probe_interval == timedelta(seconds=5)
    assert circuit.next_probe_at == clock.now() + timedelta(seconds=5)
    assert not circuit.probing


@pytest.mark.parametrize("answer", ANSWERS)
def test_any_answer_resets_failures_while_closed(answer: Outcome) -> None:
    clock = FakeClock()
    circuit = Circuit("erp")
    record(circuit, POLICY, Outcome.UNAVAILABLE, clock.now())
    record(circuit, POLICY, Outcome.UNAVAILABLE, clock.now())
    assert record(circuit, POLICY, answer, clock.now()) is Transition.NONE
    assert circuit.failures == 0
    # Failures must be consecutive: two more do not open it.
    record(circuit, POLICY, Outcome.UNAVAILABLE, clock.now())
    record(circuit, POLICY, Outcome.UNAVAILABLE, clock.now())
    assert circuit.state is CircuitState.CLOSED


def test_probe_due_only_when_open_idle_and_time_has_come() -> None:
    clock = FakeClock()
    circuit = Circuit("erp")
    assert not probe_due(circuit, clock.now())
    circuit = opened(clock)
    assert not probe_due(circuit, clock.now())
    clock.advance(4.9)
    assert not probe_due(circuit, clock.now())
    clock.advance(0.1)
    assert probe_due(circuit, clock.now())
    start_probe(circuit)
    assert circuit.probing
    assert not probe_due(circuit, clock.now())


def test_failed_probes_back_off_doubling_up_to_the_cap() -> None:
    clock = FakeClock()
    circuit = opened(clock)
    intervals = []
    for _ in range(5):
        clock.set(circuit.next_probe_at or clock.now())
        assert probe_due(circuit, clock.now())
        start_probe(circuit)
        transition = record(circuit, POLICY, Outcome.UNAVAILABLE, clock.now(), probe=True)
        assert transition is Transition.NONE
        assert circuit.state is CircuitState.OPEN
        assert not circuit.probing
        assert circuit.next_probe_at == clock.now() + (circuit.probe_interval or timedelta())
        intervals.append((circuit.probe_interval or timedelta()).total_seconds())
    assert intervals == [10, 20, 30, 30, 30]


@pytest.mark.parametrize("answer", ANSWERS)
def test_probe_answer_closes(answer: Outcome) -> None:
    clock = FakeClock()
    circuit = opened(clock)
    clock.advance(5)
    start_probe(circuit)
    assert record(circuit, POLICY, answer, clock.now(), probe=True) is Transition.CLOSED
    assert circuit == Circuit("erp")


def test_straggler_failure_while_open_is_ignored() -> None:
    clock = FakeClock()
    circuit = opened(clock)
    start_probe(circuit)
    before = replace(circuit)
    clock.advance(1)
    assert record(circuit, POLICY, Outcome.UNAVAILABLE, clock.now()) is Transition.NONE
    assert circuit == before
    assert circuit.probing


@pytest.mark.parametrize("answer", ANSWERS)
def test_straggler_answer_while_open_closes(answer: Outcome) -> None:
    clock = FakeClock()
    circuit = opened(clock)
    assert record(circuit, POLICY, answer, clock.now()) is Transition.CLOSED
    assert circuit.state is CircuitState.CLOSED
    assert circuit.failures == 0
    assert circuit.opened_at is None
    assert circuit.next_probe_at is None
    assert circuit.probe_interval is None
    assert not circuit.probing


def test_reopens_after_closing() -> None:
    clock = FakeClock()
    circuit = opened(clock)
    record(circuit, POLICY, Outcome.DELIVERED, clock.now(), probe=True)
    clock.advance(60)
    transitions = [
        record(circuit, POLICY, Outcome.UNAVAILABLE, clock.now()) for _ in range(POLICY.threshold)
    ]
    assert transitions[-1] is Transition.OPENED
    # A fresh opening starts the backoff over.
    assert circuit.probe_interval == POLICY.probe_interval
    assert circuit.opened_at == clock.now()


def test_plain_strings_from_the_store_work() -> None:
    clock = FakeClock()
    circuit = opened(clock)
    circuit.state = "open"  # type: ignore[assignment]
    assert record(circuit, POLICY, Outcome.DELIVERED, clock.now()) is Transition.CLOSED
