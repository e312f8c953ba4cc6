"""Each readiness item, failing and passing, as pure functions of what it looks at."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from interlink.config import Topology
from interlink.config import loads as load_topology
from interlink.features.readiness.checklist import (
    FAILED,
    NOT_AVAILABLE,
    PASSED,
    alerts_item,
    contacts_item,
    contract_item,
    drill_item,
    notice_item,
    reachable_item,
    scenarios_item,
)

READY = """\
systems:
  trading:
    contacts:
      - {role: product, email: p@example.com}
      - {role: dev, email: d@example.com}
      - {role: ops, email: o@example.com}
  treasury:
    url: http://127.0.0.1:9
    peak_hours: ["Mon-Fri 09:00-11:30"]
    maintenance_notice: 24h
    contacts:
      - {role: product, email: tp@example.com}
      - {role: dev, email: td@example.com}
      - {role: ops, email: to@example.com}
documents:
  payment_order:
    key: order_no
    contract: contract.json
    scenarios:
      - {name: payment, direction: forward, when: {kind: pay}}
      - {name: refund, direction: reverse, when: {kind: refund}}
flows:
  trading-treasury: {from: trading, to: treasury, document: payment_order}
"""


def topo(tmp_path: Path, text: str = READY) -> Topology:
    (tmp_path / "contract.json").write_text('{"type": "object"}')
    return load_topology(text, str(tmp_path / "interlink.yaml"))


@pytest.mark.parametrize(
    ("item", "change", "expected"),
    [
        (contract_item, ("    contract: contract.json\n", ""), "has no contract"),
        (scenarios_item, ("direction: reverse", "direction: forward"), "reverse: none"),
        (contacts_item, ("      - {role: ops, email: o@example.com}\n", ""), "trading: ops"),
        (
            contacts_item,
            ("      - {role: product, email: tp@example.com}\n", ""),
            "treasury: product",
        ),
    ],
)
def test_flow_items_fail_then_pass(
    tmp_path: Path, item: object, change: tuple[str, str], expected: str
) -> None:
    ready = topo(tmp_path)
    flow = ready.flows["trading-treasury"]
    assert item(ready, flow).status == PASSED  # type: ignore[operator]
    broken = topo(tmp_path, READY.replace(*change))
    found = item(broken, broken.flows["trading-treasury"])  # type: ignore[operator]
    assert found.status == FAILED and expected in found.detail and found.next


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("    maintenance_notice: 24h\n", ""), "maintenance_notice"),
        (('    peak_hours: ["Mon-Fri 09:00-11:30"]\n', ""), "peak_hours"),
    ],
)
def test_notice_and_peak_hours(tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    assert notice_item(topo(tmp_path).systems["treasury"]).status == PASSED
    found = notice_item(topo(tmp_path, READY.replace(*change)).systems["treasury"])
    assert found.status == FAILED and expected in found.detail


def test_drill_item(tmp_path: Path) -> None:
    flow = topo(tmp_path).flows["trading-treasury"]
    run = SimpleNamespace(id=3, name="outage", finished=datetime(2026, 1, 5, tzinfo=UTC))
    assert drill_item(flow, run, timedelta(days=30)).status == PASSED
    missing = drill_item(flow, None, timedelta(days=7))
    assert missing.status == FAILED and "last 7 days" in missing.detail
    assert "interlink drill run" in missing.next


@pytest.mark.parametrize(
    ("installed", "results", "error", "status"),
    [
        (False, None, None, NOT_AVAILABLE),
        (True, {"email": "ok", "apprise x": "ok"}, None, PASSED),
        (True, {"email": "ok", "apprise x": "HTTP 500"}, None, FAILED),
        (True, {}, None, FAILED),
        (True, None, "smtp refused", FAILED),
    ],
)
def test_alerts_item(
    installed: bool, results: dict[str, str] | None, error: str | None, status: str
) -> None:
    assert alerts_item(installed, results, error).status == status


def test_reachable_item(tmp_path: Path) -> None:
    system = topo(tmp_path).systems["treasury"]
    assert reachable_item(system, "HTTP 405", None).status == PASSED
    found = reachable_item(system, None, "cannot connect: Connection refused")
    assert found.status == FAILED and "Connection refused" in found.detail
