"""Consumer-aware judgement and transitive paths on a small network of seven systems:

trading ─► treasury (reads order_no, amount, payee.account) ─► bank (derives ref←order_no)
        ─► finance (reads order_no, kind, amount) ─► reporting (derives total←amount) ─► board
        ─► archive (reads everything)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from interlink.config import Topology, loads
from interlink.features.contracts.diff import compare
from interlink.features.contracts.impact import assess, reads_field, touches
from interlink.features.contracts.lint import render, warnings

ORDER: dict[str, Any] = {
    "type": "object",
    "required": ["order_no", "kind", "amount"],
    "properties": {
        "order_no": {"type": "string"},
        "kind": {"type": "string", "enum": ["pay", "refund"]},
        "amount": {"type": "string"},
        "memo": {"type": "string"},
        "payee": {
            "type": "object",
            "properties": {"account": {"type": "string"}, "name": {"type": "string"}},
        },
    },
}

NETWORK = """\
systems:
  trading: {}
  treasury: {url: http://127.0.0.1:1}
  finance: {url: http://127.0.0.1:2}
  archive: {url: http://127.0.0.1:3}
  bank: {url: http://127.0.0.1:4}
  reporting: {url: http://127.0.0.1:5}
  board: {url: http://127.0.0.1:6}
documents:
  payment_order: {key: order_no, contract: order.json}
  transfer: {key: ref}
  ledger: {key: total}
  summary: {key: id}
flows:
  trading-treasury:
    {from: trading, to: treasury, document: payment_order, reads: [order_no, amount, payee.account]}
  trading-finance:
    {from: trading, to: finance, document: payment_order, reads: [order_no, kind, amount]}
  trading-archive: {from: trading, to: archive, document: payment_order}
  treasury-bank: {from: treasury, to: bank, document: transfer, derives: {ref: order_no}}
  finance-reporting:
    {from: finance, to: reporting, document: ledger, derives: {total: amount}, reads: [total]}
  reporting-board: {from: reporting, to: board, document: summary}
"""


@pytest.fixture
def network(tmp_path: Path) -> Topology:
    (tmp_path / "order.json").write_text(json.dumps(ORDER))
    path = tmp_path / "interlink.yaml"
    path.write_text(NETWORK)
    return loads(NETWORK, str(path))


def changed(**properties: Any) -> dict[str, Any]:
    schema = json.loads(json.dumps(ORDER))
    for name, value in properties.items():
        if value is None:
            del schema["properties"][name]
        else:
            schema["properties"][name] = value
    return schema


def judge(topology: Topology, proposed: dict[str, Any]) -> dict[str, Any]:
    return assess(topology, "payment_order", compare(ORDER, proposed)).to_json()


def broken(report: dict[str, Any]) -> dict[str, set[str]]:
    return {c["flow"]: {b["rule"] for b in c["breaks"]} for c in report["consumers"]}


def paths(report: dict[str, Any]) -> set[str]:
    return {p["text"] for p in report["transitive"]}


def test_a_field_nobody_reads_breaks_only_who_reads_everything(network: Topology) -> None:
    report = judge(network, changed(memo=None))
    assert broken(report) == {"trading-archive": {"property_removed"}}
    assert set(report["unaffected_flows"]) == {"trading-treasury", "trading-finance"}
    assert report["producer"]["systems"] == []
    assert paths(report) == set()  # archive re-emits nothing


def test_a_new_enum_value_breaks_the_readers_of_kind(network: Topology) -> None:
    kind = {"type": "string", "enum": ["pay", "refund", "reversal"]}
    report = judge(network, changed(kind=kind))
    assert broken(report) == {
        "trading-finance": {"enum_value_added"},
        "trading-archive": {"enum_value_added"},
    }
    [finance] = [c for c in report["consumers"] if c["flow"] == "trading-finance"]
    assert finance["system"] == "finance"
    assert finance["breaks"][0]["path"] == "$.kind"
    # finance derives only the total from the amount: kind does not travel on to reporting.
    assert paths(report) == set()


def test_a_widened_amount_travels_down_the_network(network: Topology) -> None:
    report = judge(network, changed(amount={"type": ["string", "number"]}))
    assert set(broken(report)) == {"trading-treasury", "trading-finance", "trading-archive"}
    by_text = {p["text"]: p for p in report["transitive"]}
    assert set(by_text) == {
        "trading → finance → reporting",
        "trading → finance → reporting → board",
    }
    assert by_text["trading → finance → reporting"]["precise"] is True
    assert by_text["trading → finance → reporting"]["fields"] == ["total"]
    assert by_text["trading → finance → reporting → board"]["precise"] is False
    assert "bank" not in report["systems"]  # treasury derives its ref from order_no only
    assert set(report["systems"]) == {"treasury", "finance", "archive", "reporting", "board"}


def test_the_order_number_reaches_the_bank_through_treasury(network: Topology) -> None:
    report = judge(network, changed(order_no={"type": ["string", "integer"]}))
    assert "trading → treasury → bank" in paths(report)


def test_nested_reads(network: Topology) -> None:
    account = {"type": "object", "properties": {"account": {"type": "integer"}}}
    name_only = changed(
        payee={
            **ORDER["properties"]["payee"],
            "properties": {"account": {"type": "string"}, "name": {"type": "integer"}},
        }
    )
    assert "trading-treasury" not in broken(judge(network, name_only))
    assert "trading-treasury" in broken(judge(network, changed(payee=account)))
    assert "trading-treasury" in broken(judge(network, changed(payee={"type": "string"})))


def test_producer_side_breaks_the_upstream(network: Topology) -> None:
    proposed = changed()
    proposed["required"] = [*ORDER["required"], "memo"]
    report = judge(network, proposed)
    assert report["consumers"] == []
    assert report["producer"]["systems"] == ["trading"]
    assert [b["rule"] for b in report["producer"]["breaks"]] == ["property_became_required"]
    assert report["breaking"] is True


def test_opening_the_document_breaks_only_flows_without_reads(network: Topology) -> None:
    closed = {**ORDER, "additionalProperties": False}
    report = assess(network, "payment_order", compare(closed, ORDER)).to_json()
    assert broken(report) == {"trading-archive": {"additional_properties_opened"}}


@pytest.mark.parametrize(
    ("field", "read", "expected"),
    [
        ("amount", "amount", True),
        ("payee.account", "payee", True),
        ("payee", "payee.account", True),
        ("payee.name", "payee.account", False),
        ("lines.*", "lines.amount", True),
        ("amountx", "amount", False),
        ("", "amount", True),
    ],
)
def test_touches(field: str, read: str, expected: bool) -> None:
    assert touches(field, read) is expected


def test_reads_field_of_flow_without_reads(network: Topology) -> None:
    [change] = compare(ORDER, changed(memo={"type": "integer"}))
    assert reads_field(network.flows["trading-archive"], change) == "*"
    assert reads_field(network.flows["trading-treasury"], change) is None


def test_lint_warns_about_undefined_fields(tmp_path: Path) -> None:
    (tmp_path / "order.json").write_text(json.dumps(ORDER))
    text = NETWORK.replace("reads: [order_no, kind, amount]", "reads: [order_no, knd, amount]")
    text += "  trading-bank:\n"
    text += "    {from: trading, to: bank, document: payment_order, derives: {nope: order_no}}\n"
    path = tmp_path / "interlink.yaml"
    path.write_text(text)
    topology = loads(text, str(path))
    messages = [m for _, m in warnings(topology)]
    assert any("'knd' is not defined by the contract of payment_order" in m for m in messages)
    assert any("'nope' is not defined" in m for m in messages)
    line = 1 + next(i for i, t in enumerate(text.splitlines()) if "knd" in t)
    assert any(r.startswith(f"{path}:{line}: warning:") and "knd" in r for r in render(topology))
