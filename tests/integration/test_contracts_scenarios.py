"""Scenarios end to end: classification stored and counted, the unmapped hold with its event
and release (ordered flows keep order), ambiguity refused, and intake refusing a document with
every nested problem listed and nothing stored."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from interlink.errors import InputError, Invalid
from interlink.features.contracts.service import scenarios
from interlink.intake import Item
from interlink.service import Hub
from tests.conftest import Api, delivery_of, header
from tests.receiver import Receiver

ORDER: dict[str, Any] = {
    "type": "object",
    "required": ["order_no", "kind", "amount"],
    "properties": {
        "order_no": {"type": "string"},
        "kind": {"type": "string"},
        "channel": {"type": "string"},
        "amount": {"type": "number"},
        "payee": {
            "type": "object",
            "required": ["account"],
            "properties": {"account": {"type": "string", "minLength": 6}},
        },
        "lines": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["amount"],
                "properties": {"amount": {"type": "number"}},
            },
        },
    },
}

TOPOLOGY = """\
timezone: UTC
database: sqlite:///hub.db
systems:
  trading:
    token_env: TEST_TRADING_TOKEN
  treasury:
    url: {treasury}
  finance:
    url: {finance}
documents:
  payment_order:
    key: order_no
    contract: order.json
    scenarios:
      - name: payment
        direction: forward
        when: {{kind: pay}}
      - name: refund
        direction: reverse
        likelihood: low
        when: {{kind: refund, amount: {{lt: 0}}}}
      - name: partial
        direction: forward
        likelihood: low
        when: {{kind: partial}}
flows:
  trading-treasury:
    from: trading
    to: treasury
    document: payment_order
    path: /payments
    ordered: true
    require_scenario: true
  trading-finance:
    from: trading
    to: finance
    document: payment_order
    path: /trades
"""


@pytest.fixture
def network(tmp_path: Path, make_hub: Callable[[str], Hub]) -> Hub:
    (tmp_path / "order.json").write_text(json.dumps(ORDER))
    return make_hub(TOPOLOGY)


def order(no: str, kind: str = "pay", amount: float = 10, **extra: Any) -> dict[str, Any]:
    return {"order_no": no, "kind": kind, "amount": amount, **extra}


async def send(hub: Hub, *payloads: dict[str, Any]) -> list[Any]:
    return await hub.intake.submit(
        hub.topology.systems["trading"], [Item("payment_order", p) for p in payloads]
    )


async def test_every_document_is_classified_and_counted(network: Hub) -> None:
    results = await send(network, order("P1"), order("P2"), order("R1", "refund", -10))
    assert [r["scenario"] for r in results] == ["payment", "payment", "refund"]
    assert network.document(results[2]["id"]).scenario == "refund"
    report = scenarios(network).report()
    [doc] = report["documents"]
    assert {s["name"]: s["documents"] for s in doc["scenarios"]} == {
        "payment": 2,
        "refund": 1,
        "partial": 0,
    }
    assert doc["never_seen"] == ["partial"]
    assert doc["unmapped"]["count"] == 0
    flows = {f["flow"]: f["scenarios"] for f in doc["flows"]}
    assert flows["trading-finance"] == {"payment": 2, "refund": 1, "partial": 0}


async def test_unmapped_is_held_reported_and_released_in_order(
    network: Hub, treasury: Receiver, finance: Receiver
) -> None:
    # A refund with a positive amount matches no agreed scenario.
    [odd] = await send(network, order("K1", "refund", 5, channel="app"))
    [later] = await send(network, order("K1", "pay", 5))  # the next revision of the same key
    [bonus] = await send(network, order("K2", "bonus", 1, channel="app"))
    assert odd["scenario"] is None
    states = {d["flow"]: (d["status"], d["reason"]) for d in odd["deliveries"]}
    assert states == {
        "trading-treasury": ("held", "unmapped_scenario"),
        "trading-finance": ("pending", None),  # this flow does not require a scenario
    }
    assert delivery_of(network, later["id"]).state == "held: blocked"

    events = [e for e in network.events() if e["kind"] == "document_unmapped"]
    assert len(events) == 2
    first = next(e for e in events if e["detail"]["document"] == odd["id"])
    assert first["system"] == "trading" and first["flow"] == "trading-treasury"
    assert first["detail"] == {
        "document": odd["id"],
        "key": "K1",
        "type": "payment_order",
        "flows": ["trading-treasury"],
        "fields": {"kind": "refund", "amount": 5},
    }

    [doc] = scenarios(network).report()["documents"]
    assert doc["unmapped"]["count"] == 2
    kinds = doc["unmapped"]["fields"]["kind"]
    assert sorted((k["value"], k["count"]) for k in kinds) == [("bonus", 1), ("refund", 1)]
    assert {"values": {"kind": "refund", "amount": 5}, "count": 1} in doc["unmapped"]["groups"]

    await network.engine.drain()
    assert treasury.requests == []  # nothing unmapped or behind it went out

    with pytest.raises(InputError):
        scenarios(network).release("cli:test", flow="trading-treasury")  # --all is required
    result = scenarios(network).release("cli:test", document=odd["id"])
    assert result["released"] == 1 and result["flows"] == {"trading-treasury": 1}
    assert delivery_of(network, odd["id"]).status == "pending"
    assert delivery_of(network, later["id"]).state == "held: blocked"  # order kept
    [audit] = network.audit(f"document:{odd['id']}")
    assert (audit["actor"], audit["action"]) == ("cli:test", "release_unmapped")

    await network.engine.drain()
    await network.engine.drain()
    assert [
        (header(r, "Interlink-Key"), header(r, "Interlink-Revision")) for r in treasury.requests
    ] == [
        ("K1", "1"),
        ("K1", "2"),
    ]
    assert delivery_of(network, bonus["id"]).state == "held: unmapped_scenario"

    everything = scenarios(network).release("cli:test", flow="trading-treasury", everything=True)
    assert everything["released"] == 1
    await network.engine.drain()
    assert header(treasury.requests[-1], "Interlink-Key") == "K2"


async def test_release_api(network: Hub) -> None:
    [held] = await send(network, order("K9", "bonus"))
    server = await Api(network).start()
    try:
        status, body, _ = await server.request(
            "POST", "/api/v1/scenarios/release", json={"flow": "trading-treasury"}
        )
        assert status == 400
        status, body, _ = await server.request(
            "POST", "/api/v1/scenarios/release", json={"document": held["id"]}
        )
        assert status == 200 and isinstance(body, dict) and body["released"] == 1
        status, body, _ = await server.request(
            "POST", "/api/v1/scenarios/release", json={"document": "nope"}
        )
        assert status == 404
        status, body, _ = await server.request(
            "GET", "/api/v1/scenarios?flow=trading-treasury&since=2000-01-01"
        )
        assert status == 200 and isinstance(body, dict)
        assert body["documents"][0]["unmapped"]["count"] == 1
        status, body, _ = await server.request("GET", "/api/v1/scenarios?flow=nope")
        assert status == 404
    finally:
        await server.stop()


async def test_a_document_matching_two_scenarios_is_refused(
    tmp_path: Path, make_hub: Callable[[str], Hub]
) -> None:
    (tmp_path / "order.json").write_text(json.dumps(ORDER))
    overlapping = TOPOLOGY.replace("when: {{kind: partial}}", "when: {{amount: {{gt: 100}}}}")
    hub = make_hub(overlapping)
    [refused] = await send(hub, order("BIG", "pay", 500))
    assert isinstance(refused, Invalid) and refused.http_status == 422
    assert refused.detail["problems"] == [
        {
            "path": "$",
            "message": "scenario catalogue error: matches several scenarios: payment, partial",
        }
    ]
    assert hub.documents("BIG") == []


async def test_a_violating_document_lists_every_nested_problem_and_stores_nothing(
    network: Hub,
) -> None:
    bad = {
        "order_no": "V1",
        "amount": "ten",
        "payee": {"account": "12"},
        "lines": [{"amount": 1}, {"amount": "x"}, {}],
    }
    [refused] = await send(network, bad)
    assert isinstance(refused, Invalid)
    paths = {(p["path"], p["message"]) for p in refused.detail["problems"]}
    assert paths == {
        ("$.kind", "is required but missing"),
        ("$.amount", 'expected a number, got a string ("ten")'),
        ("$.payee.account", '"12" has 2 characters; at least 6 needed'),
        ("$.lines[1].amount", 'expected a number, got a string ("x")'),
        ("$.lines[2].amount", "is required but missing"),
    }
    assert network.documents("V1") == []
