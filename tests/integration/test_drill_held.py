"""Drills that expect deliveries to end held, by hold reason (issue 14): a real rehearsal with
the engine and a sandbox, on an ordered flow where a rejected payment blocks its refund."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from interlink.config import Topology
from interlink.errors import ConfigError
from interlink.features.drills import spec as drill_spec
from interlink.features.drills.run import rehearse
from interlink.features.registry import FEATURES
from tests.integration.test_drill_run import BASE, TOPOLOGY
from tests.receiver import Receiver

Make = Callable[[str, str], tuple[drill_spec.DrillFile, Topology]]

REJECT_PO3 = """\
faults:
  treasury:
    - {fault: reject, when: {order_no: PO-3, kind: pay}, message: "account closed"}
"""


@pytest.fixture
def setup(write_topology: Callable[[str], Topology], treasury: Receiver, tmp_path: Path) -> Make:
    topology = write_topology(TOPOLOGY.format(treasury=treasury.url))

    def make(name: str, rest: str) -> tuple[drill_spec.DrillFile, Topology]:
        path = tmp_path / f"{name}.yaml"
        base = BASE.format(name=name).replace("time_limit: 8s\n", "")  # each test sets its own
        path.write_text(base + REJECT_PO3 + textwrap.dedent(rest))
        return drill_spec.load(path), topology

    return make


def check(report: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [c for c in report["expectations"] if c["name"] == name]
    return found


async def test_a_drill_can_expect_the_refund_behind_a_rejected_payment_held_blocked(
    setup: Make,
) -> None:
    spec, topology = setup(
        "blocked",
        """\
        time_limit: 6s
        expect:
          delivered_within: 5s
          dead: [{key: PO-3, reason: rejected, revision: 1}]
          held: [{key: PO-3, reason: blocked, revision: 2, flow: trading-treasury}]
        """,
    )
    report = await rehearse(spec, topology, features=FEATURES)
    assert report["passed"], report["expectations"]
    # It settled on the expected hold instead of waiting for the time limit.
    assert report["settled"] is True
    held = check(report, "PO-3 r2 held (blocked) on trading-treasury")
    assert held["status"] == "passed" and "held (blocked)" in held["evidence"]
    lost = check(report, "nothing lost")
    assert lost["status"] == "passed" and "1 held as expected" in lost["evidence"]
    assert report["coverage"]["scenarios"]["refund"]["trading-treasury"] == "passed"


async def test_without_the_held_expectation_the_same_run_fails(setup: Make) -> None:
    spec, topology = setup("unexpected", "time_limit: 3s\n")
    report = await rehearse(spec, topology, features=FEATURES)
    lost = check(report, "nothing lost")
    assert lost["status"] == "failed"
    assert "trading-treasury PO-3 r2 (held: blocked)" in " ".join(lost["details"])


async def test_expecting_another_hold_reason_fails_with_what_happened(setup: Make) -> None:
    spec, topology = setup(
        "wrong",
        """\
        time_limit: 3s
        expect:
          held: [{key: PO-3, reason: paused, revision: 2}]
        """,
    )
    report = await rehearse(spec, topology, features=FEATURES)
    assert not report["passed"]
    wrong = check(report, "PO-3 r2 held (paused)")
    assert wrong["status"] == "failed" and "held (blocked)" in wrong["evidence"]


def test_every_hold_reason_can_be_expected_and_others_are_refused_with_a_line(
    tmp_path: Path,
) -> None:
    reasons = ["maintenance", "downstream_down", "auth", "paused", "blocked", "unmapped_scenario"]
    held = ", ".join(f"{{key: K{i}, reason: {r}}}" for i, r in enumerate(reasons))
    path = tmp_path / "d.yaml"
    path.write_text(BASE.format(name="all") + f"expect:\n  held: [{held}]\n")
    assert [h.reason for h in drill_spec.load(path).drill.expect.held] == reasons
    path.write_text(BASE.format(name="bad") + "expect:\n  held:\n    - {key: K, reason: stuck}\n")
    with pytest.raises(ConfigError) as refused:
        drill_spec.load(path)
    [problem] = refused.value.problems
    assert problem.startswith(f"{path}:17: expect.held[0].reason: Input should be 'maintenance'")
