"""The drill file: loading, file:line errors, references checked against a topology."""

from __future__ import annotations

import random
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from interlink.config import load
from interlink.config import loads as load_topology
from interlink.errors import ConfigError
from interlink.example import EXAMPLE_DRILLS, write_example
from interlink.features.drills.sandbox import decide
from interlink.features.drills.spec import FaultStep, check_against, loads, render_payload
from interlink.features.drills.spec import load as load_drill

TOPOLOGY = """\
systems:
  trading: {}
  treasury: {url: "http://127.0.0.1:9"}
documents:
  payment_order:
    key: order_no
    scenarios:
      - {name: payment, direction: forward, when: {kind: pay}}
      - {name: refund, direction: reverse, when: {kind: refund}}
flows:
  trading-treasury: {from: trading, to: treasury, document: payment_order, ordered: true}
"""

DRILL = """\
name: small
flows: [trading-treasury]
documents:
  - {scenario: payment, count: 3, payload: {order_no: "PO-{n:02d}", kind: pay}}
faults:
  treasury:
    - {fault: down, at: 1s, for: 2s}
    - {fault: slow, latency: 50ms}
expect:
  delivered_within: 5s
  alerts: [circuit_opened, {kind: circuit_closed, system: treasury}]
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        loads(textwrap.dedent(text), "d.yaml")
    return caught.value.problems


def test_a_drill_loads_with_durations_and_alert_shorthand() -> None:
    drill = loads(DRILL, "d.yaml").drill
    down, slow = drill.faults["treasury"]
    assert (down.start, down.end, slow.end) == (1.0, 3.0, None)
    assert slow.latency == timedelta(milliseconds=50)
    assert [a.label() for a in drill.expect.alerts] == [
        "circuit_opened",
        "circuit_closed (treasury)",
    ]
    assert drill.timeline_end() == 3.0
    assert drill.outage_systems() == ["treasury"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: x\nflows: [a]\ndocuments: []\nbogus: 1\n", "d.yaml:4: bogus: unknown key"),
        (
            "name: x\nflows: [a]\ndocuments:\n  - {scenario: s, payload: {}}\nfaults:\n"
            "  t:\n    - {fault: explode}\n",
            "d.yaml:7: faults.t[0].fault:",
        ),
        (
            "name: x\nflows: [a]\ndocuments:\n  - {scenario: s, payload: {}}\nfaults:\n"
            "  t:\n    - {fault: reject}\n",
            "reject step needs when",
        ),
        (
            "name: x\nflows: [a]\ndocuments:\n  - {scenario: s, payload: {}, file: f.json}\n",
            "d.yaml:4: documents[0]: give either payload",
        ),
        (
            "name: x\nflows: [a]\ndocuments:\n  - {scenario: s, payload: {}}\nrate: fast\n",
            "d.yaml:5: rate: 'fast' is not a rate",
        ),
        ("name: x\nflows: [a\n", "d.yaml:3:"),
        ("- a list\n", "a drill file is a mapping"),
    ],
)
def test_bad_drill_files_say_where(text: str, expected: str) -> None:
    found = problems(text)
    assert any(expected in p for p in found), found


def check(drill_text: str, tmp_path: Path) -> list[str]:
    topology = load_topology(TOPOLOGY, str(tmp_path / "interlink.yaml"))
    path = tmp_path / "d.yaml"
    path.write_text(textwrap.dedent(drill_text))
    spec = loads(path.read_text(), str(path))
    with pytest.raises(ConfigError) as caught:
        check_against(spec, topology)
    return caught.value.problems


def test_the_example_drill_checks_clean(tmp_path: Path) -> None:
    topology = load_topology(TOPOLOGY, str(tmp_path / "interlink.yaml"))
    check_against(loads(DRILL, str(tmp_path / "d.yaml")), topology)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("flows: [trading-treasury]", "flows: [nope]"), ":2: flows.0: unknown flow 'nope'"),
        (("  treasury:\n", "  trading:\n"), ":6: faults.trading: 'trading' is not a target"),
        (("scenario: payment", "scenario: reversal"), ":4: documents.0: no document type"),
        (("kind: pay}", "kind: refund}"), "the template does not match scenario 'payment'"),
    ],
)
def test_references_are_checked_against_the_topology(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    found = check(DRILL.replace(*change), tmp_path)
    assert any(expected in p for p in found), found


def test_missing_document_file_is_named(tmp_path: Path) -> None:
    text = DRILL.replace(
        '{scenario: payment, count: 3, payload: {order_no: "PO-{n:02d}", kind: pay}}',
        "{scenario: payment, file: missing.ndjson}",
    )
    assert any("file missing.ndjson not found" in p for p in check(text, tmp_path))


@pytest.mark.parametrize(
    ("template", "n", "expected"),
    [
        ({"no": "PO-{n}"}, 7, {"no": "PO-7"}),
        ({"no": "PO-{n:04d}", "amount": "{n}.50"}, 12, {"no": "PO-0012", "amount": "12.50"}),
        ({"lines": [{"sku": "S{n}"}], "qty": 2}, 3, {"lines": [{"sku": "S3"}], "qty": 2}),
        ({"text": "no placeholder"}, 1, {"text": "no placeholder"}),
    ],
)
def test_payload_templates(template: dict, n: int, expected: dict) -> None:
    assert render_payload(template, n) == expected


# -- the sandbox's decision, pure ----------------------------------------------------------------


def step(**kw: object) -> FaultStep:
    return FaultStep.model_validate(kw)


@pytest.mark.parametrize(
    ("steps", "payload", "action", "status"),
    [
        ([], {}, "ok", 200),
        ([step(fault="up")], {}, "ok", 200),
        ([step(fault="down")], {}, "refuse", 200),
        ([step(fault="timeout")], {}, "hang", 200),
        ([step(fault="error", status=502)], {}, "status", 502),
        ([step(fault="throttle")], {}, "status", 429),
        ([step(fault="reject", when={"kind": "refund"})], {"kind": "refund"}, "status", 422),
        ([step(fault="reject", when={"kind": "refund"})], {"kind": "pay"}, "ok", 200),
        ([step(fault="ack_twice")], {}, "ack_twice", 200),
        ([step(fault="cut_off")], {}, "cut_off", 200),
        ([step(fault="error", rate=0.0)], {}, "ok", 200),
        ([step(fault="error", at="5s")], {}, "ok", 200),
        ([step(fault="error", **{"for": "0.5s"})], {}, "ok", 200),
        (
            [step(fault="reject", when={"kind": "pay"}), step(fault="error")],
            {"kind": "x"},
            "status",
            503,
        ),
    ],
)
def test_decide(steps: list[FaultStep], payload: dict, action: str, status: int) -> None:
    decision = decide(steps, 1.0, payload, random.Random(1))
    assert (decision.action, decision.status) == (action, status)


def test_slow_latencies_add_up_with_bounded_jitter() -> None:
    steps = [step(fault="slow", latency="100ms", jitter="50ms"), step(fault="slow", latency=0.2)]
    rng = random.Random(3)
    delays = [decide(steps, 0.0, {}, rng).delay for _ in range(50)]
    assert all(0.3 <= d <= 0.35 for d in delays)
    assert len(set(delays)) > 1


def test_throttle_says_when_to_come_back() -> None:
    decision = decide([step(fault="throttle", retry_after="3s")], 0.0, {}, random.Random(1))
    assert decision.headers == {"Retry-After": "3"}


@pytest.mark.parametrize("name", sorted(EXAMPLE_DRILLS))
def test_the_shipped_example_drills_check_against_the_example_topology(
    tmp_path: Path, name: str
) -> None:
    write_example(tmp_path)
    topology = load(tmp_path / "interlink.yaml")
    spec = load_drill(tmp_path / name)
    check_against(spec, topology)
    assert spec.drill.time_limit.total_seconds() <= 20
    assert spec.drill.expect.order_kept
