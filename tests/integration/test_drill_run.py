"""Drills run end to end in-process: the real engine and clock against sandboxes, on a fresh
temporary store. Timelines are one to three seconds: a real-time rehearsal, kept short."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from interlink.clock import FakeClock
from interlink.config import Topology
from interlink.features.drills import spec as drill_spec
from interlink.features.drills.run import (
    DrillRefused,
    assert_sandboxed,
    record,
    rehearse,
    sandboxed_topology,
)
from interlink.features.drills.service import drills
from interlink.features.registry import FEATURES
from interlink.service import Hub
from tests.receiver import Receiver

TOPOLOGY = """\
timezone: UTC
database: sqlite:///hub.db
systems:
  trading:
    contacts: [{{role: dev, email: trading-dev@example.com, notify: "json://127.0.0.1:9/"}}]
  treasury:
    url: {treasury}
    timeout: 2s
    contacts: [{{role: ops, email: treasury-ops@example.com}}]
documents:
  payment_order:
    key: order_no
    scenarios:
      - {{name: payment, direction: forward, when: {{kind: pay}}}}
      - {{name: refund, direction: reverse, when: {{kind: refund}}}}
flows:
  trading-treasury:
    from: trading
    to: treasury
    document: payment_order
    path: /payments
    ordered: true
alerts:
  smtp: {{host: 127.0.0.1, port: 9, from: hub@example.com}}
"""

BASE = """\
name: {name}
flows: [trading-treasury]
rate: 100/s
order: interleave
documents:
  - {{scenario: payment, count: 8, payload: {{order_no: "PO-{{n}}", kind: pay}}}}
  - {{scenario: refund, count: 8, payload: {{order_no: "PO-{{n}}", kind: refund}}}}
overrides:
  engine: {{circuit_threshold: 2, probe_interval: 200ms, probe_max: 400ms}}
  flows:
    trading-treasury: {{retry: [100ms, 300ms], give_up_after: 30s}}
  systems:
    treasury: {{timeout: 300ms}}
time_limit: 8s
"""


@pytest.fixture
def setup(
    write_topology: Callable[[str], Topology], treasury: Receiver, tmp_path: Path
) -> Callable[[str, str], tuple[drill_spec.DrillFile, Topology]]:
    topology = write_topology(TOPOLOGY.format(treasury=treasury.url))

    def make(name: str, rest: str) -> tuple[drill_spec.DrillFile, Topology]:
        path = tmp_path / f"{name}.yaml"
        path.write_text(BASE.format(name=name) + textwrap.dedent(rest))
        return drill_spec.load(path), topology

    return make


def check(report: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [c for c in report["expectations"] if c["name"] == name]
    return found


async def test_an_outage_drill_passes_and_never_reaches_the_real_downstream(
    setup: Callable[[str, str], tuple[drill_spec.DrillFile, Topology]], treasury: Receiver
) -> None:
    spec, topology = setup(
        "outage",
        """\
        faults:
          treasury:
            - {fault: down, at: 0s, for: 0.8s}
        expect:
          delivered_within: 5s
          max_duplicates: 0
          order_kept: true
          alerts: [{kind: circuit_opened, system: treasury}, circuit_closed]
        """,
    )
    report = await rehearse(spec, topology, features=FEATURES)
    assert report["passed"], report["expectations"]
    assert treasury.requests == []  # the real url was never used
    assert report["sandboxes"]["treasury"]["url"] != treasury.url
    assert report["sandboxes"]["treasury"]["booked"] == 16
    assert report["outages"] == ["treasury"]
    assert "unavailable" in report["timeline"]["outcomes"]
    assert report["coverage"]["scenarios"]["refund"]["trading-treasury"] == "passed"
    opened = [e for e in report["events"] if e["kind"] == "circuit_opened"]
    assert opened and opened[0]["t"] < 1.0


async def test_a_violated_drill_fails_and_names_each_broken_expectation(
    setup: Callable[[str, str], tuple[drill_spec.DrillFile, Topology]],
) -> None:
    spec, topology = setup(
        "violated",
        """\
        faults:
          treasury:
            - {fault: reject, when: {order_no: PO-1, kind: refund}, message: "account closed"}
        expect:
          delivered_within: 3s
          dead: [{key: PO-1, reason: gave_up}]
          alerts: [circuit_opened]
        """,
    )
    report = await rehearse(spec, topology, features=FEATURES)
    assert not report["passed"]
    assert check(report, "everything delivered within 3s")["status"] == "passed"  # PO-1 excepted
    dead = check(report, "PO-1 dead (gave_up)")
    assert dead["status"] == "failed" and "account closed" in dead["evidence"]
    assert check(report, "alert circuit_opened fired")["status"] == "failed"
    assert check(report, "nothing lost")["status"] == "passed"
    kinds = {e["kind"] for e in report["events"]}
    assert "delivery_rejected" in kinds


async def test_timeouts_throttling_and_cut_offs_are_retried_to_delivery(
    setup: Callable[[str, str], tuple[drill_spec.DrillFile, Topology]],
) -> None:
    spec, topology = setup(
        "rough",
        """\
        faults:
          treasury:
            - {fault: timeout, at: 0s, for: 0.4s}
            - {fault: throttle, at: 0.4s, for: 0.3s, retry_after: 0s}
            - {fault: cut_off, at: 0.7s, for: 0.3s, rate: 0.5}
        expect:
          max_duplicates: 16
          order_kept: true
        """,
    )
    report = await rehearse(spec, topology, features=FEATURES)
    assert check(report, "nothing lost")["status"] == "passed", report["expectations"]
    assert check(report, "order kept per key")["status"] == "passed"
    outcomes = set(report["timeline"]["outcomes"])
    assert {"unavailable", "throttled", "delivered"} <= outcomes


async def test_a_maintenance_window_needs_the_capability(
    setup: Callable[[str, str], tuple[drill_spec.DrillFile, Topology]],
) -> None:
    spec, topology = setup(
        "window",
        """\
        maintenance: {system: treasury, at: 0.2s, for: 0.6s, reason: release 4.2}
        expect:
          delivered_within: 5s
        """,
    )
    report = await rehearse(spec, topology, features=FEATURES)
    [window] = [c for c in report["expectations"] if c["name"].startswith("maintenance window")]
    if "maintenance" in report["capabilities"]:
        assert window["status"] == "passed", window
        assert any(e["kind"] == "maintenance_started" for e in report["events"])
    else:
        assert window["status"] == "not available" and not report["passed"]


def test_the_rehearsal_topology_has_no_channels_and_only_sandbox_urls(
    setup: Callable[[str, str], tuple[drill_spec.DrillFile, Topology]], treasury: Receiver
) -> None:
    spec, topology = setup("x", "")
    urls = {"treasury": "http://127.0.0.1:1"}
    copy = sandboxed_topology(topology, spec, urls, "sqlite://")
    assert copy.alerts.smtp is None
    assert all(
        c.email is None and c.notify is None for s in copy.systems.values() for c in s.contacts
    )
    assert copy.systems["treasury"].timeout.total_seconds() == 0.3
    assert copy.flows["trading-treasury"].retry[0].total_seconds() == 0.1
    assert_sandboxed(copy, urls)
    with pytest.raises(DrillRefused, match="not a drill sandbox"):
        assert_sandboxed(copy, {"treasury": treasury.url})
    wrong = copy.model_copy(
        update={"systems": {**copy.systems, "treasury": topology.systems["treasury"]}}
    )
    with pytest.raises(DrillRefused):
        assert_sandboxed(wrong, urls)


async def test_runs_are_recorded_for_readiness_and_the_api(
    setup: Callable[[str, str], tuple[drill_spec.DrillFile, Topology]], tmp_path: Path
) -> None:
    spec, topology = setup(
        "quick",
        """\
        faults:
          treasury:
            - {fault: down, at: 0s, for: 0.3s}
        expect: {max_duplicates: 0}
        """,
    )
    report = await rehearse(spec, topology, features=FEATURES)
    hub = Hub(topology, clock=FakeClock(), features=FEATURES)
    try:
        run_id = record(hub.store, report)
        [listed] = drills(hub).runs()
        assert (listed["id"], listed["passed"], listed["outages"]) == (run_id, True, ["treasury"])
        assert drills(hub).run(run_id)["report"]["drill"] == "quick"
    finally:
        await hub.close()
