"""`interlink drill run` and `interlink readiness` as real processes, on the example topology
that `interlink init` writes, with its two example drills."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from interlink.example import write_example
from tests.acceptance.conftest import Run, write


@pytest.fixture
def topology_dir(tmp_path: Path) -> Path:
    """The files `interlink init` writes, written in-process (the init command itself is
    exercised by the example drill tests)."""
    write_example(tmp_path)
    return tmp_path


VIOLATED = """\
name: violated on purpose
flows: [trading-treasury]
rate: 50/s
documents:
  - scenario: payment
    count: 5
    payload: {order_no: "V-{n}", kind: pay, amount: "1.00", currency: CNY, payee_account: "62"}
faults:
  treasury:
    - {fault: reject, when: {order_no: V-3}, message: "payee account closed"}
overrides:
  flows:
    trading-treasury: {retry: [100ms], give_up_after: 10s}
time_limit: 10s
expect:
  delivered_within: 5s
  alerts: [circuit_opened]
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("drill", "alerts"),
    [("treasury-down-at-peak", True), ("refund-overtakes-payment", False)],
)
def test_each_example_drill_passes_within_20_seconds(
    example: Path, cli: Callable[..., Run], drill: str, alerts: bool
) -> None:
    started = time.monotonic()
    result = cli("drill", "run", f"drills/{drill}.yaml", "--report", f"{drill}.html")
    took = time.monotonic() - started
    assert result.code == 0, result.out + result.err
    assert took <= 20, took
    assert "PASSED" in result.out and "order kept per key" in result.out
    page = (example.parent / f"{drill}.html").read_text()
    assert "<svg" in page and "PASS" in page and "FAIL</td>" not in page
    if alerts:
        # The outage drill is on record: readiness counts it for the flow it covered.
        ready = cli("readiness", "trading-treasury", "--json")
        [flow] = ready.json()["flows"]
        drill_item = next(i for i in flow["items"] if i["item"] == "outage drill passed")
        assert drill_item["status"] == "passed", drill_item


def test_a_violated_drill_exits_1_with_a_readable_report(
    topology_dir: Path, cli: Callable[..., Run]
) -> None:
    write(topology_dir / "violated.yaml", VIOLATED)
    result = cli("drill", "run", "violated.yaml", "--report", "violated.md")
    assert result.code == 1, result.out + result.err
    assert "FAILED" in result.out
    assert "FAIL" in result.out and "alert circuit_opened fired" in result.out
    assert "V-3" in result.out and "payee account closed" in result.out
    md = (topology_dir / "violated.md").read_text()
    assert "| **FAIL** | everything delivered within 5s |" in md
    assert "| **FAIL** | alert circuit_opened fired |" in md
    assert "<svg" in md


def test_a_bad_drill_file_exits_2_with_file_and_line(
    topology_dir: Path, cli: Callable[..., Run]
) -> None:
    write(topology_dir / "bad.yaml", VIOLATED.replace("fault: reject", "fault: explode"))
    result = cli("drill", "run", "bad.yaml")
    assert result.code == 2
    assert "bad.yaml:10: faults.treasury[0].fault:" in result.err
    assert cli("drill", "run", "bad.yaml", "--report", "x.pdf").code == 2


def test_readiness_lists_the_gaps_and_exits_1(topology_dir: Path, cli: Callable[..., Run]) -> None:
    result = cli("readiness", "--json")
    assert result.code == 1
    flows = {f["flow"]: f for f in result.json()["flows"]}
    assert set(flows) == {"trading-treasury", "trading-finance", "trading-member"}
    items = {i["item"]: i for i in flows["trading-treasury"]["items"]}
    assert items["contract defined"]["status"] == "passed"
    assert items["forward and reverse scenarios"]["status"] == "passed"
    assert items["maintenance notice and peak hours declared"]["status"] == "passed"
    assert items["contacts for product, dev and ops on both ends"]["status"] == "failed"
    assert items["downstream reachable"]["status"] == "failed"  # nothing listens on :9101
    text = cli("readiness", "trading-member")
    assert text.code == 1 and "not ready" in text.out and "FAIL" in text.out
