"""Contract versions end to end: version 1 from the file, check with replay, publish refused
then forced, intake switching to the new version here and in another process, and the API."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from interlink.clock import FakeClock
from interlink.errors import Conflict, Invalid, NotFound
from interlink.features.contracts.registry import SYSTEM_ACTOR
from interlink.features.contracts.service import contracts
from interlink.features.registry import FEATURES
from interlink.intake import Item
from interlink.service import Hub
from tests.conftest import Api

ORDER: dict[str, Any] = {
    "type": "object",
    "required": ["order_no", "kind", "amount"],
    "properties": {
        "order_no": {"type": "string", "minLength": 1},
        "kind": {"type": "string", "enum": ["pay", "refund"]},
        "amount": {"type": "number"},
        "memo": {"type": "string"},
    },
}

TOPOLOGY = """\
timezone: UTC
database: sqlite:///hub.db
systems:
  trading:
    token_env: TEST_TRADING_TOKEN
    contacts:
      - role: product
        email: pm@example.com
  treasury:
    url: {treasury}
  finance:
    url: {finance}
documents:
  payment_order:
    key: order_no
    contract: order.json
flows:
  trading-treasury:
    from: trading
    to: treasury
    document: payment_order
    path: /payments
    reads: [order_no, amount]
  trading-finance:
    from: trading
    to: finance
    document: payment_order
    path: /trades
    reads: [order_no, kind, amount]
"""


@pytest.fixture
def network(tmp_path: Path, make_hub: Callable[[str], Hub]) -> Hub:
    (tmp_path / "order.json").write_text(json.dumps(ORDER))
    return make_hub(TOPOLOGY)


def proposal(**changes: Any) -> dict[str, Any]:
    schema = json.loads(json.dumps(ORDER))
    for key, value in changes.items():
        if key == "required":
            schema["required"] = value
        else:
            schema["properties"][key] = value
    return schema


async def send(hub: Hub, *payloads: dict[str, Any]) -> list[Any]:
    return await hub.intake.submit(
        hub.topology.systems["trading"], [Item("payment_order", p) for p in payloads]
    )


def test_the_file_becomes_version_one_once(network: Hub, clock: FakeClock) -> None:
    [v1] = contracts(network).history("payment_order")
    assert (v1.version, v1.published_by, v1.schema) == (1, SYSTEM_ACTOR, ORDER)
    other = Hub(
        network.topology, clock=clock, features=FEATURES
    )  # a second process on the same store
    try:
        assert [v.version for v in contracts(other).history("payment_order")] == [1]
    finally:
        other.store.close()


async def test_check_replays_stored_documents(network: Hub) -> None:
    amounts = [5, 50, 150, 250, 350, 450, 550, 650]
    await send(network, *({"order_no": f"N{a}", "kind": "pay", "amount": a} for a in amounts))
    report = contracts(network).check(
        "payment_order", proposal(amount={"type": "number", "maximum": 100})
    )
    assert report["breaking"] is True
    assert [b["rule"] for b in report["producer"]["breaks"]] == ["maximum_added"]
    assert report["replay"]["checked"] == 8
    assert report["replay"]["refused"] == 6
    examples = report["replay"]["examples"]
    assert len(examples) == 5
    assert all(e["problems"][0]["path"] == "$.amount" for e in examples)
    assert {e["key"] for e in examples} <= {f"N{a}" for a in amounts[2:]}
    limited = contracts(network).check(
        "payment_order", proposal(amount={"type": "number", "maximum": 100}), replay=2
    )
    assert limited["replay"]["checked"] == 2


async def test_publish_refused_then_forced_then_intake_follows(network: Hub) -> None:
    registry = contracts(network)
    kinds = {"type": "string", "enum": ["pay", "refund", "reversal"]}
    breaking = proposal(kind=kinds, required=["order_no", "kind", "amount", "memo"])
    with pytest.raises(Conflict) as refused:
        registry.publish("payment_order", breaking, "cli:test")
    report = refused.value.detail["report"]
    assert [c["flow"] for c in report["consumers"]] == ["trading-finance"]  # reads kind
    assert report["unaffected_flows"] == ["trading-treasury"]
    assert report["producer"]["systems"] == ["trading"]
    with pytest.raises(Conflict):
        registry.publish("payment_order", breaking, "cli:test", force=True)  # no reason
    assert [v.version for v in registry.history("payment_order")] == [1]
    assert not [e for e in network.events() if e["kind"] == "contract_published"]

    result = registry.publish(
        "payment_order", breaking, "cli:test", force=True, reason="finance agreed on #42"
    )
    assert (result["published"], result["version"]) == (True, 2)
    [v1, v2] = registry.history("payment_order")
    assert (v2.forced, v2.reason, v2.published_by) == (True, "finance agreed on #42", "cli:test")
    assert v2.schema == breaking and v2.hash != v1.hash
    [event] = [e for e in network.events() if e["kind"] == "contract_published"]
    detail = event["detail"]
    assert (detail["document"], detail["version"], detail["forced"]) == ("payment_order", 2, True)
    assert detail["systems"] == ["finance", "trading"]
    assert detail["flows"] == ["trading-finance"]
    assert set(detail["actions"]) == {"finance", "trading"}
    assert {c["rule"] for c in detail["changes"]} == {
        "enum_value_added",
        "property_became_required",
    }
    assert network.audit("document:payment_order")[0]["action"] == "contract_publish"

    # Intake validates against version 2 from now on.
    [no_memo, reversal] = await send(
        network,
        {"order_no": "A1", "kind": "pay", "amount": 1},
        {"order_no": "A2", "kind": "reversal", "amount": 1, "memo": "x"},
    )
    assert isinstance(no_memo, Invalid)
    assert no_memo.detail["problems"] == [{"path": "$.memo", "message": "is required but missing"}]
    assert isinstance(reversal, dict)


async def test_a_compatible_change_publishes_without_force(network: Hub) -> None:
    registry = contracts(network)
    safer = proposal(memo={"type": ["string", "null"]})  # nobody reads memo
    result = registry.publish("payment_order", safer, "cli:test")
    assert result["breaking"] is False and result["version"] == 2
    again = registry.publish("payment_order", safer, "cli:test")
    assert (again["published"], again["version"]) == (False, 2)
    [event] = [e for e in network.events() if e["kind"] == "contract_published"]
    assert event["detail"]["breaking"] is False and event["detail"]["systems"] == []


async def test_another_process_picks_up_a_published_version(network: Hub, clock: FakeClock) -> None:
    other = Hub(network.topology, clock=clock, features=FEATURES)
    try:
        narrower = proposal(amount={"type": "number", "minimum": 0})
        contracts(network).publish(
            "payment_order", narrower, "cli:test", force=True, reason="no negative amounts"
        )
        negative = {"order_no": "B1", "kind": "refund", "amount": -3}
        [accepted] = await send(other, negative)
        assert isinstance(accepted, dict)  # not polled yet
        assert contracts(other).poll in other.hooks.housekeepers  # run by the engine's cycle
        other.store.write_sync(lambda conn: contracts(other).poll(conn, clock.now()))
        [refused] = await send(other, {**negative, "order_no": "B2"})
        assert isinstance(refused, Invalid)
        # A restart takes the stored version too, even though the file did not change.
        third = Hub(network.topology, clock=clock, features=FEATURES)
        try:
            [also] = await send(third, {**negative, "order_no": "B3"})
            assert isinstance(also, Invalid)
        finally:
            third.store.close()
    finally:
        other.store.close()


@pytest.mark.parametrize(
    ("document", "schema", "error", "text"),
    [
        ("invoice", ORDER, NotFound, "unknown document type 'invoice'"),
        ("payment_order", [1, 2], Invalid, "must be a JSON object"),
        ("payment_order", {"type": 12}, Invalid, "not a valid JSON Schema"),
        ("payment_order", {"minLength": "x"}, Invalid, "not a valid JSON Schema"),
        (
            "payment_order",
            {"properties": {"a": {"$ref": "other.json#/a"}}},
            Invalid,
            "only local references",
        ),
    ],
)
def test_bad_input(
    network: Hub, document: str, schema: Any, error: type[Exception], text: str
) -> None:
    with pytest.raises(error) as caught:
        contracts(network).check(document, schema)
    assert text in str(caught.value)


async def test_api(network: Hub) -> None:
    server = await Api(network).start()
    try:
        kinds = {"type": "string", "enum": ["pay"]}
        status, body, _ = await server.request(
            "POST", "/api/v1/contracts/payment_order/check", json=proposal(kind=kinds)
        )
        assert status == 200 and isinstance(body, dict)
        assert body["breaking"] is True
        assert [b["rule"] for b in body["producer"]["breaks"]] == ["enum_value_removed"]

        status, body, _ = await server.request(
            "POST", "/api/v1/contracts/payment_order/publish", json={"schema": proposal(kind=kinds)}
        )
        assert status == 409 and isinstance(body, dict)
        assert body["error"]["report"]["breaking"] is True

        status, body, _ = await server.request(
            "POST",
            "/api/v1/contracts/payment_order/publish",
            json={"schema": proposal(kind=kinds), "force": True, "reason": "refunds stop"},
        )
        assert status == 200 and isinstance(body, dict) and body["version"] == 2

        status, body, _ = await server.request("GET", "/api/v1/contracts/payment_order")
        assert status == 200 and isinstance(body, dict)
        assert body["version"] == 2 and [v["version"] for v in body["history"]] == [1, 2]

        status, body, _ = await server.request(
            "POST", "/api/v1/contracts/invoice/check", json=ORDER
        )
        assert status == 404
        status, body, _ = await server.request(
            "POST", "/api/v1/contracts/payment_order/check", json={"type": 12}
        )
        assert status == 422
    finally:
        await server.stop()


def test_the_migration_creates_the_table_as_declared(network: Hub) -> None:
    from sqlalchemy import inspect

    from interlink.features.contracts.tables import contract_versions

    with network.store.reading() as conn:
        found = inspect(conn)
        columns = {c["name"] for c in found.get_columns("contract_versions")}
        indexes = {i["name"] for i in found.get_indexes("contract_versions")}
        uniques = {u["name"] for u in found.get_unique_constraints("contract_versions")}
    assert columns == {c.name for c in contract_versions.columns}
    # PostgreSQL lists the index behind a unique constraint among the indexes too.
    assert indexes - uniques == {i.name for i in contract_versions.indexes}
    assert uniques == {"uq_contract_versions"}
