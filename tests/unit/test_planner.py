"""The planner: outcomes in, state changes out, with no store, network, clock or sleep."""

from __future__ import annotations

import dataclasses
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from interlink.config import Flow, Topology, loads
from interlink.engine.circuit import Circuit, CircuitPolicy, Transition
from interlink.engine.holds import Holds, Placed
from interlink.engine.outcome import Classified, Outcome
from interlink.engine.planner import Job, Sent, plan
from interlink.engine.retry import RetryPolicy
from interlink.model import CircuitState, DeadReason, HoldReason, Status

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
POLICY = CircuitPolicy(
    threshold=2, probe_interval=timedelta(seconds=5), probe_max=timedelta(seconds=30)
)
TOPOLOGY = """\
systems:
  trading: {}
  treasury: {url: "http://127.0.0.1:9"}
documents:
  payment_order: {key: order_no}
flows:
  trading-treasury: {from: trading, to: treasury, document: payment_order, ordered: true}
"""


@pytest.fixture(scope="module")
def topology() -> Topology:
    return loads(textwrap.dedent(TOPOLOGY), str(Path("/tmp/interlink.yaml")))


@pytest.fixture(scope="module")
def flow(topology: Topology) -> Flow:
    return topology.flows["trading-treasury"]


def sent(flow: Flow, outcome: Outcome, n: int = 1, probe: bool = False, **kw: object) -> Sent:
    job = Job(
        id=n,
        document_id=f"d{n}",
        flow=flow,
        key=f"k{n}",
        revision=1,
        attempts=0,
        failures=0,
        first_failure_at=None,
        lease_until=NOW + timedelta(seconds=30),
        probe=probe,
    )
    return Sent(job, NOW, 3.0, Classified(outcome, detail="d", **kw), None, None)  # type: ignore[arg-type]


def run(flow: Flow, batch: list[Sent], circuits: dict[str, Circuit] | None = None, **kw: object):  # type: ignore[no-untyped-def]
    retry = {flow.name: RetryPolicy(tuple(flow.retry), flow.give_up_after)}
    return plan(
        batch,
        NOW,
        circuits=circuits or {},
        policy=POLICY,
        retry=retry,
        flow_holds=kw.get("flow_holds", {}),  # type: ignore[arg-type]
    )


def test_delivered_releases_the_key_and_touches_nothing_else(flow: Flow) -> None:
    p = run(flow, [sent(flow, Outcome.DELIVERED)])
    (u,) = p.updates
    assert (u.status, u.reason, u.delivered_at, u.attempts, u.flow) == (
        Status.DELIVERED,
        None,
        NOW,
        1,
        flow.name,
    )
    assert (u.id, u.lease_until) == (1, NOW + timedelta(seconds=30))
    assert p.delivered_keys == {(flow.name, "k1")}
    assert not p.events and not p.throttled and not p.transitions and not p.saved


@pytest.mark.parametrize(
    ("outcome", "reason", "kind"),
    [
        (Outcome.REJECTED, DeadReason.REJECTED, "delivery_rejected"),
        (Outcome.LOCAL_ERROR, DeadReason.LOCAL_ERROR, "delivery_local_error"),
    ],
)
def test_dead_outcomes_are_typed_events(
    flow: Flow, outcome: Outcome, reason: DeadReason, kind: str
) -> None:
    p = run(flow, [sent(flow, outcome)])
    assert (p.updates[0].status, p.updates[0].reason) == (Status.DEAD, reason)
    (event,) = p.events
    assert (event.kind, event.system, event.flow) == (kind, flow.target, flow.name)
    assert event.as_dict(NOW)["detail"] == {"delivery": 1, "detail": "d"}


def test_throttle_is_returned_not_applied(flow: Flow) -> None:
    p = run(flow, [sent(flow, Outcome.THROTTLED, retry_after=20.0)])
    assert p.throttled == {flow.name: NOW + timedelta(seconds=20)}
    assert p.updates[0].status == Status.PENDING
    assert p.updates[0].next_at == NOW + timedelta(seconds=20)
    assert p.updates[0].failures == 0  # the downstream's own time spends no failure


def test_circuit_opens_as_data_and_the_given_circuits_stay_as_they_were(flow: Flow) -> None:
    given = {flow.target: Circuit(flow.target)}
    before = dataclasses.replace(given[flow.target])
    batch = [sent(flow, Outcome.UNAVAILABLE, n) for n in (1, 2, 3)]
    p = run(flow, batch, given)
    assert given[flow.target] == before  # pure: nothing given is changed
    assert p.circuits[flow.target].state == CircuitState.OPEN
    assert p.transitions == [(flow.target, Transition.OPENED)]
    assert p.changed == [flow.target] and p.saved == {flow.target}
    assert [e.kind for e in p.events] == ["circuit_opened"]
    # The first retries; the second opens the circuit, and from then on each is held
    # without spending its retry budget.
    assert [u.status for u in p.updates] == [Status.PENDING, Status.HELD, Status.HELD]
    assert p.updates[2].reason == HoldReason.DOWNSTREAM_DOWN


def test_unauthorized_holds_the_flow_once(flow: Flow) -> None:
    p = run(flow, [sent(flow, Outcome.UNAUTHORIZED, n) for n in (1, 2)])
    assert p.auth_flows == {flow.name: "d"}
    assert all(u.reason == HoldReason.AUTH for u in p.updates)
    already = run(flow, [sent(flow, Outcome.UNAUTHORIZED)], flow_holds={flow.name: "auth"})
    assert already.auth_flows == {}


def test_a_local_error_probe_frees_the_probe_slot(flow: Flow) -> None:
    open_ = Circuit(flow.target, state=CircuitState.OPEN, probing=True)
    p = run(flow, [sent(flow, Outcome.LOCAL_ERROR, probe=True)], {flow.target: open_})
    assert p.circuits[flow.target].probing is False
    assert open_.probing is True
    assert not p.transitions


def test_holds_snapshot_places_every_path_alike() -> None:
    holds = Holds(flows={"f": "paused"}, sources={"s": "maintenance"}, open=frozenset({"s", "t"}))
    assert holds.place("f", "t") == (Status.HELD, HoldReason.PAUSED)
    assert holds.place("g", "s") == (Status.HELD, HoldReason.MAINTENANCE)
    assert holds.place("g", "t") == (Status.HELD, HoldReason.DOWNSTREAM_DOWN)
    assert holds.place("g", "u") == (Status.PENDING, None)
    assert holds.place("g", "u", blocked=True) == (Status.HELD, HoldReason.BLOCKED)
    rows = [Placed(1, "g", "u"), Placed(2, "g", "u"), Placed(3, "g", "t")]
    assert holds.place_rows(rows, frozenset({2})) == {
        (Status.PENDING, None): [1],
        (Status.HELD, HoldReason.BLOCKED): [2],
        (Status.HELD, HoldReason.DOWNSTREAM_DOWN): [3],
    }
