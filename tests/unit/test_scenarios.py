"""The scenario matcher language, its check at load, and the coverage report (pure parts)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from interlink.config import Scenario, loads
from interlink.errors import ConfigError
from interlink.features.contracts.coverage import Counts, build, unmapped_groups
from interlink.scenarios import (
    Ambiguous,
    classify,
    compile_when,
    distinguishing,
    matcher_problems,
    matches,
    when_fields,
)


def scenario(name: str, when: dict[str, Any], direction: str = "forward") -> Scenario:
    return Scenario(name=name, direction=direction, when=when)  # type: ignore[arg-type]


CATALOGUE = [
    scenario("payment", {"kind": "pay", "amount": {"gt": 0}}),
    scenario("partial", {"kind": "pay", "partial": {"exists": True}, "amount": {"gt": 0}}),
    scenario("refund", {"kind": {"in": ["refund", "reversal"]}}, "reverse"),
    scenario("history", {"any": [{"legacy": True}, {"year": {"lt": 2020}}]}),
]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"kind": "refund"}, "refund"),
        ({"kind": "reversal"}, "refund"),
        ({"kind": "pay", "amount": "12.5"}, "payment"),
        ({"kind": "pay", "amount": 0}, None),
        ({"kind": "bonus"}, None),
        ({"legacy": True}, "history"),
        ({"year": 2019}, "history"),
        ({"year": 2021}, None),
    ],
)
def test_classify(payload: dict[str, Any], expected: str | None) -> None:
    assert classify(CATALOGUE, payload) == expected


def test_two_matches_are_a_catalogue_error() -> None:
    with pytest.raises(Ambiguous) as caught:
        classify(CATALOGUE, {"kind": "pay", "amount": 5, "partial": True})
    assert caught.value.names == ["payment", "partial"]


@pytest.mark.parametrize(
    ("when", "problem"),
    [
        ({"kind": {"gtx": 1}}, "unknown operator 'gtx'"),
        ({"kind": {"in": "pay"}}, "'in' takes a list"),
        ({"kind": {"exists": "yes"}}, "'exists' takes true or false"),
        ({"amount": {"lt": [1]}}, "compares numbers"),
        ({"kind": {}}, "an empty condition"),
        ({"all": []}, "all takes a non-empty list"),
        ({"any": [{"x": {"nope": 1}}]}, "unknown operator 'nope'"),
        ({"a..b": 1}, "is not a field name"),
    ],
)
def test_malformed_matchers(when: dict[str, Any], problem: str) -> None:
    [(_, message)] = matcher_problems(when)
    assert problem in message


@pytest.mark.parametrize("scenario_", CATALOGUE, ids=lambda s: s.name)
def test_the_catalogue_is_well_formed(scenario_: Scenario) -> None:
    assert matcher_problems(scenario_.when) == []


def test_malformed_matcher_is_refused_at_load_with_file_and_line(tmp_path: Path) -> None:
    text = textwrap.dedent("""\
        systems:
          a: {}
          b: {url: "http://127.0.0.1:1"}
        documents:
          d:
            key: k
            scenarios:
              - name: s
                direction: forward
                when:
                  any:
                    - {kind: {gtx: 1}}
        flows:
          f: {from: a, to: b, document: d}
        """)
    with pytest.raises(ConfigError) as caught:
        loads(text, "x.yaml")
    assert caught.value.problems == [
        "x.yaml:12: documents.d.scenarios[0].when.any[0].kind.gtx: unknown operator 'gtx'; "
        "use one of eq, exists, gt, gte, in, lt, lte, ne"
    ]


def test_distinguishing_values() -> None:
    assert when_fields(CATALOGUE) == ["kind", "amount", "partial", "legacy", "year"]
    assert distinguishing(CATALOGUE, {"kind": "bonus", "amount": 3}) == {
        "kind": "bonus",
        "amount": 3,
        "partial": None,
        "legacy": None,
        "year": None,
    }


def test_unmapped_groups_count_values_and_combinations() -> None:
    catalogue = [scenario("payment", {"kind": "pay"}), scenario("refund", {"kind": "refund"})]
    payloads = [{"kind": "bonus"}, {"kind": "bonus"}, {"kind": "chargeback"}, {}]
    groups = unmapped_groups(catalogue, payloads)
    assert groups["fields"] == {
        "kind": [
            {"value": "bonus", "count": 2},
            {"value": "chargeback", "count": 1},
            {"value": "null", "count": 1},
        ]
    }
    assert groups["groups"][0] == {"values": {"kind": "bonus"}, "count": 2}


def test_coverage_report(tmp_path: Path) -> None:
    text = textwrap.dedent("""\
        systems:
          trading: {}
          finance: {url: "http://127.0.0.1:1"}
          treasury: {url: "http://127.0.0.1:2"}
        documents:
          order:
            key: order_no
            scenarios:
              - {name: payment, direction: forward, when: {kind: pay}}
              - {name: refund, direction: reverse, likelihood: low, when: {kind: refund}}
        flows:
          to-finance: {from: trading, to: finance, document: order, require_scenario: true}
          to-treasury: {from: trading, to: treasury, document: order}
        """)
    topology = loads(text, str(tmp_path / "interlink.yaml"))
    counts = Counts(
        by_type={("order", "payment"): 7, ("order", None): 2},
        by_flow={
            ("to-finance", "payment"): 7,
            ("to-finance", None): 2,
            ("to-treasury", "payment"): 7,
        },
        unmapped={"order": [{"kind": "bonus"}, {"kind": "bonus"}]},
    )
    [doc] = build(topology, counts)["documents"]
    assert doc["documents"] == 9
    assert [(s["name"], s["documents"]) for s in doc["scenarios"]] == [
        ("payment", 7),
        ("refund", 0),
    ]
    assert doc["never_seen"] == ["refund"]
    assert doc["unmapped"]["count"] == 2
    assert doc["unmapped"]["groups"] == [{"values": {"kind": "bonus"}, "count": 2}]
    flows = {f["flow"]: f for f in doc["flows"]}
    assert flows["to-finance"]["unmapped"] == 2 and flows["to-finance"]["require_scenario"]
    assert flows["to-treasury"]["never_seen"] == ["refund"]
    [only] = build(topology, counts, flow="to-treasury")["documents"][0]["flows"]
    assert only["flow"] == "to-treasury"


PAYLOADS = [
    {},
    {"kind": "pay", "amount": 5},
    {"kind": "pay", "amount": "5.5", "partial": None},
    {"kind": "refund", "amount": -1},
    {"kind": "reversal", "year": "2019"},
    {"legacy": True, "year": 2025},
    {"legacy": 1},
    {"kind": ["pay"], "amount": "abc", "year": 2019.5},
    {"nested": {"a": {"b": 3}}, "amount": True},
]
MATCHERS = [
    *(s.when for s in CATALOGUE),
    {"nested.a.b": {"gte": 3, "lt": 4}},
    {"nested.a": {"exists": False}},
    {"kind": ["pay", "refund"], "amount": {"ne": 5}},
    {"amount": {"eq": "5.50"}},
    {"all": [{"kind": "pay"}, {"any": [{"amount": {"gt": 1}}, {"partial": {"exists": True}}]}]},
    {"kind": {"bogus": 1}},
]


@pytest.mark.parametrize("when", MATCHERS, ids=str)
def test_compiled_matchers_decide_as_the_interpreter(when: dict[str, Any]) -> None:
    for payload in PAYLOADS:
        assert compile_when(when)(payload) is matches(when, payload), payload
