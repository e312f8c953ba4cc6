"""The rollout's pure rules: where a document goes on each flow, and the promotion gate."""

from __future__ import annotations

from datetime import timedelta

from interlink.config import RolloutGate, RolloutSettings, loads
from interlink.features.rollout import rules
from interlink.hooks import FlowRoute, Route
from interlink.web.console.graph import EdgeState, dot_source, states

PILOT = RolloutSettings.model_validate(
    {"when": {"branch": "0571"}, "outside": {"fallback": "legacy"}}
)
HOLD = RolloutSettings.model_validate({"share": "50%", "outside": "hold"})


def route_of(stage: str, settings: RolloutSettings = PILOT) -> dict[str, FlowRoute]:
    return rules.routes({"new": settings}, {"new": stage}, {"new": rules.Pilot.of(settings)})


def test_a_fallback_pair_takes_each_document_once() -> None:
    inside, outside = {"branch": "0571"}, {"branch": "0999"}
    for stage, new_in, new_out in (
        ("pilot", Route.DELIVER, Route.ROUTED),
        ("full", Route.DELIVER, Route.DELIVER),
        ("off", Route.ROUTED, Route.ROUTED),
    ):
        found = route_of(stage)
        assert found["new"]("K", inside) == new_in, stage
        assert found["new"]("K", outside) == new_out, stage
        for payload in (inside, outside):
            takers = [f for f, r in found.items() if r("K", payload) == Route.DELIVER]
            assert len(takers) == 1, (stage, payload, takers)


def test_hold_and_skip_outside() -> None:
    keys = [f"K{n}" for n in range(100)]
    held = [k for k in keys if route_of("pilot", HOLD)["new"](k, {}) == Route.HOLD]
    assert held == [k for k in keys if not rules.in_share(k, 50)]
    skip = RolloutSettings.model_validate({"share": "50%", "outside": "skip"})
    assert route_of("off", skip)["new"]("K1", {}) == Route.SKIP
    assert set(route_of("pilot", HOLD)) == {"new"}


def record(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "delivered": 5,
        "dead": 0,
        "pilot_seconds": 3600.0,
        "open_incidents": [],
        "reconciliation": None,
        "readiness": None,
    }
    return {**base, **changes}


def failed(gate: RolloutGate, **changes: object) -> list[str]:
    return [c.name for c in rules.gate(gate, record(**changes)) if not c.passed]


def test_the_gate_rules() -> None:
    gate = RolloutGate()
    assert failed(gate) == []
    assert failed(gate, delivered=0) == ["delivered"]
    assert failed(gate, dead=1) == ["dead"]
    assert failed(RolloutGate(max_dead=2), dead=2) == []
    assert failed(gate, open_incidents=[{"id": 1}]) == ["incidents"]
    assert failed(RolloutGate(allow_open_incidents=True), open_incidents=[{"id": 1}]) == []
    dirty = {"id": 3, "complete": True, "categories": {"missing": 2, "timing": 0}}
    timing = {"id": 4, "complete": True, "categories": {"missing": 0, "timing": 7}}
    assert failed(gate, reconciliation=dirty) == ["reconciliation"]
    assert failed(gate, reconciliation=timing) == []
    assert failed(gate, reconciliation={**timing, "complete": False}) == ["reconciliation"]
    assert failed(RolloutGate(require_reconciliation=True)) == ["reconciliation"]
    assert failed(gate, readiness={"passed": False}) == []  # shown, not required
    assert failed(RolloutGate(require_readiness=True), readiness={"passed": False}) == ["readiness"]
    week = RolloutGate.model_validate({"min_time": "7d"})
    assert failed(week) == ["pilot_time"]
    assert failed(week, pilot_seconds=timedelta(days=8).total_seconds()) == []
    [check] = [c for c in rules.gate(week, record()) if c.name == "pilot_time"]
    assert check.detail == "the pilot has run 1h; at least 7d needed"


def test_the_graph_labels_a_rolled_out_flow_with_its_stage() -> None:
    status = {
        "systems": {},
        "flows": {"new": {"pending": 1, "rollout": {"stage": "pilot", "share": 12.5}}},
    }
    topology = loads(
        "systems: {a: {}, b: {url: 'http://127.0.0.1:9'}}\n"
        "documents: {p: {key: k}}\n"
        "flows: {new: {from: a, to: b, document: p, rollout: {share: 12.5%}}, "
        "old: {from: a, to: b, document: p}}\n"
    )
    _, edges = states(topology, status, set(), set())
    assert [(e.flow, e.stage, e.share) for e in edges] == [
        ("new", "pilot", 12.5),
        ("old", None, None),
    ]
    source = dot_source([], edges, {"stage.pilot": "试点"}).source
    assert "[flowing]\\n试点 12.5%" in source
    assert (
        dot_source([], [EdgeState("x", "a", "b", "flowing", None, 0, 0, 0)], {}).source.count("\\n")
        == 2
    )
