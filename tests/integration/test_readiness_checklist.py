"""The readiness checklist on a small topology: a real receiver to probe (and to refuse), a
real SMTP server for the alert channels' test message, and the drill record in the store."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from interlink.clock import FakeClock
from interlink.config import Topology
from interlink.features.drills.run import record
from interlink.features.readiness.checklist import check
from interlink.features.registry import FEATURES
from interlink.service import Hub
from tests.conftest import Api
from tests.receiver import Receiver

TOPOLOGY = """\
timezone: UTC
database: sqlite:///hub.db
systems:
  trading:
    contacts:
      - {{role: product, email: p@example.com}}
      - {{role: dev, email: d@example.com}}
      - {{role: ops, email: o@example.com}}
  treasury:
    url: {treasury}
    timeout: 1s
    peak_hours: ["Mon-Fri 09:00-11:30"]
    maintenance_notice: 24h
    contacts:
      - {{role: product, email: tp@example.com}}
      - {{role: dev, email: td@example.com}}
      - {{role: ops, email: to@example.com}}
documents:
  payment_order:
    key: order_no
    contract: contract.json
    scenarios:
      - {{name: payment, direction: forward, when: {{kind: pay}}}}
      - {{name: refund, direction: reverse, when: {{kind: refund}}}}
flows:
  trading-treasury: {{from: trading, to: treasury, document: payment_order}}
alerts:
  smtp: {{host: 127.0.0.1, port: {smtp}, from: hub@example.com}}
"""


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, inbox
    controller.stop()


@pytest.fixture
def ready(
    write_topology: Callable[[str], Topology],
    treasury: Receiver,
    smtp: tuple[int, Inbox],
    tmp_path: Any,
) -> Iterator[Hub]:
    (tmp_path / "contract.json").write_text('{"type": "object"}')
    topology = write_topology(TOPOLOGY.format(treasury=treasury.url, smtp=smtp[0]))
    hub = Hub(topology, clock=FakeClock(), features=FEATURES)
    yield hub
    hub.store.close()


def passed_outage_drill(hub: Hub, flows: list[str], outages: list[str]) -> int:
    now = hub.clock.now().isoformat()
    report = {
        "drill": "outage",
        "file": "d.yaml",
        "started": now,
        "finished": now,
        "passed": True,
        "flows": flows,
        "outages": outages,
    }
    return record(hub.store, report)


def items(result: dict[str, Any]) -> dict[str, dict[str, str]]:
    [flow] = result["flows"]
    return {i["item"]: i for i in flow["items"]}


async def test_every_item_passes_on_a_ready_flow(
    ready: Hub, treasury: Receiver, smtp: tuple[int, Inbox]
) -> None:
    passed_outage_drill(ready, ["trading-treasury"], ["treasury"])
    result = await check(ready, "trading-treasury")
    found = items(result)
    if "alerts" in ready.capabilities:
        assert result["passed"], found
        assert len(smtp[1].messages) >= 1  # the test message reached the SMTP server
    else:
        alerts = found["alert channels answer a test message"]
        assert alerts["status"] == "not available" and not result["passed"]
    assert all(
        i["status"] == "passed" for name, i in found.items() if not name.startswith("alert")
    ), found
    assert treasury.requests[0].body == b""  # the probe sent no document
    assert "HTTP 200" in found["downstream reachable"]["detail"]


async def test_a_refusing_downstream_is_not_reachable(ready: Hub, treasury: Receiver) -> None:
    await treasury.refuse()
    found = items(await check(ready))
    reachable = found["downstream reachable"]
    assert reachable["status"] == "failed" and reachable["next"]


async def test_the_drill_item_needs_a_passed_outage_drill_of_that_flow_in_the_period(
    ready: Hub,
) -> None:
    name = "outage drill passed"
    assert items(await check(ready))[name]["status"] == "failed"
    passed_outage_drill(ready, ["trading-treasury"], [])  # no outage in it
    passed_outage_drill(ready, ["other-flow"], ["treasury"])  # another flow
    assert items(await check(ready))[name]["status"] == "failed"
    passed_outage_drill(ready, ["trading-treasury"], ["treasury"])
    assert items(await check(ready))[name]["status"] == "passed"
    assert isinstance(ready.clock, FakeClock)
    ready.clock.advance(timedelta(days=31))
    assert items(await check(ready))[name]["status"] == "failed"
    assert items(await check(ready, within=timedelta(days=40)))[name]["status"] == "passed"


async def test_a_channel_that_does_not_answer_fails_the_alerts_item(
    write_topology: Callable[[str], Topology], treasury: Receiver, tmp_path: Any
) -> None:
    (tmp_path / "contract.json").write_text('{"type": "object"}')
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    hub = Hub(
        write_topology(TOPOLOGY.format(treasury=treasury.url, smtp=closed)), features=FEATURES
    )
    try:
        alerts = items(await check(hub))["alert channels answer a test message"]
    finally:
        hub.store.close()
    expected = "failed" if "alerts" in hub.capabilities else "not available"
    assert alerts["status"] == expected


async def test_the_api_serves_readiness_and_drill_runs(ready: Hub) -> None:
    run_id = passed_outage_drill(ready, ["trading-treasury"], ["treasury"])
    api = await Api(ready).start()
    try:
        status, body, _ = await api.request("GET", "/api/v1/readiness?flow=trading-treasury")
        assert status == 200
        assert isinstance(body, dict) and body["flows"][0]["flow"] == "trading-treasury"
        status, body, _ = await api.request("GET", "/api/v1/readiness?flow=nope")
        assert status == 404
        status, body, _ = await api.request("GET", "/api/v1/readiness?drill_within=soon")
        assert status == 400
        status, body, _ = await api.request("GET", "/api/v1/drills/runs")
        assert status == 200 and isinstance(body, list) and body[0]["id"] == run_id
        status, body, _ = await api.request("GET", f"/api/v1/drills/runs/{run_id}")
        assert status == 200 and isinstance(body, dict) and body["report"]["drill"] == "outage"
        status, _, _ = await api.request("GET", "/api/v1/drills/runs/999")
        assert status == 404
    finally:
        await api.stop()
