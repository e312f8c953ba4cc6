"""A flow's map end to end: the treasury receives our payment order in its own shape (Chinese
field names, fen, yyyyMMdd in its zone, a code table, values by scenario), signed over the
body it received; a document the map cannot map goes dead as ours; the preview over the API
and the CLI; ``interlink check`` names broken maps by file:line; lineage drives impact."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from interlink.cli import app, common
from interlink.config import Topology
from interlink.errors import InterlinkError
from interlink.features.contracts.diff import compare
from interlink.features.contracts.impact import assess
from interlink.features.reconcile.service import reconcile
from interlink.intake import canonical
from interlink.service import Hub
from interlink.transports.signing import verify
from tests.conftest import (
    FINANCE_FLOW,
    SECRET,
    TREASURY_FLOW,
    Api,
    delivery_of,
    header,
    pay,
    submit,
)
from tests.console_support import ENV, USERS, Browser
from tests.receiver import Receiver

CONTRACT = {
    "type": "object",
    "required": ["order_no", "amount", "kind"],
    "properties": {
        "order_no": {"type": "string"},
        "amount": {"type": "string"},
        "kind": {"type": "string", "enum": ["pay", "refund"]},
        "pay_before": {"type": "string"},
        "payee": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "account": {"type": "string"}},
        },
        "lines": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"no": {"type": "integer"}, "amount": {"type": "string"}},
            },
        },
    },
}

MAPPED = """\
timezone: Asia/Shanghai
database: sqlite:///hub.db
code_tables:
  payment_kind: {{pay: "01", refund: "02"}}
systems:
  trading: {{token_env: TEST_TRADING_TOKEN}}
  treasury: {{url: "{treasury}", secret_env: TEST_TREASURY_SECRET, timeout: 2s}}
  finance: {{url: "{finance}", timeout: 2s}}
  ledger: {{url: "{finance}"}}
documents:
  payment_order:
    key: order_no
    amount: amount
    contract: contract.json
    scenarios:
      - {{name: payment, direction: forward, when: {{kind: pay}}}}
      - {{name: refund, direction: reverse, likelihood: low, when: {{kind: refund}}}}
  treasury_entry:
    key: 付款单号
flows:
  trading-treasury:
    from: trading
    to: treasury
    document: payment_order
    path: /payments
    retry: [5s]
    give_up_after: 1h
    reconcile:
      map: {{key: 付款单号, amount: 金额, status: 付款类型}}
    map:
      timezone: Asia/Shanghai
      fields:
        付款单号: order_no
        金额: {{path: amount, format: fen}}
        日期: {{path: pay_before, format: yyyyMMdd}}
        付款类型: {{path: kind, code: payment_kind}}
        币种: {{const: CNY}}
        收款方:
          fields:
            户名: payee.name
            账号: payee.account
        明细:
          each: lines
          fields:
            行号: "no"
            金额: {{path: amount, format: fen}}
        摘要:
          by_scenario:
            payment: {{const: 付款}}
            refund: {{path: "join(' ', ['退款', order_no])"}}
  trading-finance:
    from: trading
    to: finance
    document: payment_order
    path: /trades
    retry: [5s]
    give_up_after: 1h
  treasury-ledger:
    from: treasury
    to: ledger
    document: treasury_entry
    derives: {{entry_amount: 金额, account: 收款方.账号}}
"""


def order(order_no: str, amount: str = "1234.56", kind: str = "pay") -> dict:
    return pay(
        order_no,
        amount=amount,
        kind=kind,
        pay_before="2026-11-30T20:30:00Z",  # 04:30 on 1 December in Shanghai
        payee={"name": "上海某某有限公司", "account": "6222000011112222"},
        lines=[{"no": 1, "amount": "1000.00"}, {"no": 2, "amount": "234.56"}],
    )


@pytest.fixture
def mapped(make_hub: Callable[[str], Hub], tmp_path: Path) -> Hub:
    (tmp_path / "contract.json").write_text(json.dumps(CONTRACT))
    return make_hub(MAPPED + USERS)


def run_cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str]:
    printed = io.StringIO()
    monkeypatch.setattr(common.out, "file", printed)
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(app, list(args))
    output = result.output + printed.getvalue()
    if isinstance(result.exception, InterlinkError):  # as interlink.cli.main reports it
        problems = getattr(result.exception, "problems", None) or [result.exception.message]
        return 2, output + "\n".join(problems)
    return result.exit_code, output


async def test_the_treasury_receives_its_shape_signed_and_a_bad_amount_goes_dead_as_ours(
    mapped: Hub, treasury: Receiver, finance: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    [paid, refunded, bad] = await submit(
        mapped,
        order("P-1"),
        order("P-2", kind="refund"),
        order("P-3", amount="12.345"),
    )
    await mapped.engine.drain()

    by_key = {r.json["付款单号"]: r for r in treasury.requests}
    assert sorted(by_key) == ["P-1", "P-2"]
    assert by_key["P-1"].json == {
        "付款单号": "P-1",
        "金额": 123456,
        "日期": "20261201",
        "付款类型": "01",
        "币种": "CNY",
        "收款方": {"户名": "上海某某有限公司", "账号": "6222000011112222"},
        "明细": [{"行号": 1, "金额": 100000}, {"行号": 2, "金额": 23456}],
        "摘要": "付款",
    }
    assert by_key["P-2"].json["付款类型"] == "02"
    assert by_key["P-2"].json["摘要"] == "退款 P-2"
    for doc, received in ((paid, by_key["P-1"]), (refunded, by_key["P-2"])):
        stamp = int(header(received, "webhook-timestamp") or 0)
        # Signed over the body received, which is the mapped one, not our document.
        assert verify(SECRET, received.headers, received.body, now=stamp)
        assert header(received, "Idempotency-Key") == doc["id"]
        assert delivery_of(mapped, doc["id"]).status == "delivered"

    # The map refuses a fraction of a fen: dead as ours, nothing sent to the treasury.
    dead = delivery_of(mapped, bad["id"])
    assert (dead.status, dead.reason) == ("dead", "local_error")
    assert "金额: '12.345' has a fraction of a fen" in (dead.last_error or "")
    # A flow without a map still gets our document as it is.
    assert canonical(order("P-1")) in [r.body for r in finance.requests]
    assert delivery_of(mapped, bad["id"], FINANCE_FLOW).status == "delivered"

    # Reconciliation reads the treasury's records in its terms: fen and its codes.
    export = mapped.topology.path.parent / "treasury.csv"
    export.write_text("付款单号,金额,付款类型\nP-1,123456,01\nP-2,123450,02\n", encoding="utf-8")
    service = reconcile(mapped)
    report = service.run(
        TREASURY_FLOW, service.open_source(TREASURY_FLOW, export, None, None, None)
    )
    found = {(i.category, i.key) for i in report.items}
    assert found == {("amount_mismatch", "P-2"), ("missing", "P-3")}, report.to_json()
    assert report.theirs_amount == Decimal("2469.06")

    # The preview over the API shows exactly what was sent; the console shows it beside ours.
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    server = await Api(mapped).start()
    browser = Browser(server.url)
    try:
        assert await browser.sign_in("auditor") == 303
        status, page, _ = await browser.get(f"/flows/{TREASURY_FLOW}/map?document={paid['id']}")
        assert status == 200, page
        assert (
            "&#34;付款类型&#34;: &#34;01&#34;" in page and "&#34;kind&#34;: &#34;pay&#34;" in page
        )
        assert "<code>收款方.账号</code></td><td><code>payee.account</code>" in page
        status, page, _ = await browser.get(f"/flows/{TREASURY_FLOW}/map?document={bad['id']}")
        assert status == 200 and "12.345&#39; has a fraction of a fen" in page
        status, page, _ = await browser.get(f"/flows/{FINANCE_FLOW}/map")
        assert status == 200 and "no map" in page
        status, page, _ = await browser.get(f"/flows/{TREASURY_FLOW}")
        assert status == 200 and f'href="/flows/{TREASURY_FLOW}/map" id="map-link"' in page
        status, page, _ = await browser.get(f"/flows/{FINANCE_FLOW}")
        assert status == 200 and 'id="map-link"' not in page
        status, body, _ = await server.request(
            "GET", f"/api/v1/flows/{TREASURY_FLOW}/map/preview?document={paid['id']}"
        )
        assert status == 200, body
        assert isinstance(body, dict)
        assert body["mapped"] == by_key["P-1"].json and body["error"] is None
        assert body["original"] == order("P-1")
        assert body["lineage"]["明细.金额"] == ["lines.amount"]
        status, body, _ = await server.request(
            "GET", f"/api/v1/flows/{TREASURY_FLOW}/map/preview?document={bad['id']}"
        )
        assert status == 200 and isinstance(body, dict)
        assert body["mapped"] is None and "fraction of a fen" in body["error"]
        status, body, _ = await server.request(
            "GET", f"/api/v1/flows/{FINANCE_FLOW}/map/preview?document={paid['id']}"
        )
        assert status == 404, body
        status, body, _ = await server.request(
            "GET", f"/api/v1/flows/{TREASURY_FLOW}/map/preview?document={paid['id']}", token=None
        )
        assert status == 401
    finally:
        await browser.close()
        await server.stop()

    # And from the command line, side by side or as JSON.
    config = str(mapped.topology.path)
    code, output = run_cli(
        monkeypatch, "map", "preview", TREASURY_FLOW, "--document", paid["id"], "-c", config
    )
    assert code == 0, output
    assert "original" in output and "mapped" in output and '"付款类型": "01"' in output
    code, output = run_cli(
        monkeypatch,
        "map",
        "preview",
        TREASURY_FLOW,
        "--document",
        bad["id"],
        "-c",
        config,
        "--json",
    )
    assert code == 0 and json.loads(output)["error"].endswith("has a fraction of a fen")
    code, output = run_cli(
        monkeypatch, "map", "preview", TREASURY_FLOW, "--document", bad["id"], "-c", config
    )
    assert code == 1 and "cannot be mapped" in output


def test_check_names_broken_maps_by_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "contract.json").write_text(json.dumps(CONTRACT))
    text = MAPPED.format(treasury="http://127.0.0.1:9", finance="http://127.0.0.1:9")
    text = text.replace("code: payment_kind}", "code: payment_kinds}")
    text = text.replace("账号: payee.account", "账号: payee.acount")
    text = text.replace(
        'payment_kind: {pay: "01", refund: "02"}', 'payment_kind: {pay: "01"}\n  small: {pay: "01"}'
    )
    text = text.replace(
        "金额: {path: amount, format: fen}\n        日期",
        "金额: {path: amount, format: fen}\n        类型: {path: kind, code: small}\n        日期",
    )
    text = text.replace("payment: {const: 付款}", "paid: {const: 付款}")
    path = tmp_path / "interlink.yaml"
    path.write_text(text)
    lines = text.splitlines()

    def line_of(needle: str) -> int:
        return next(i for i, line in enumerate(lines, 1) if needle in line)

    code, output = run_cli(monkeypatch, "check", "-c", str(path))
    assert code == 2, output
    expected = [
        f"{path}:{line_of('code: small')}: flows.trading-treasury.map.fields.类型.code: code "
        "table small has no entry for 'refund' (a value the contract allows for kind)",
        f"{path}:{line_of('code: payment_kinds')}: flows.trading-treasury.map.fields.付款类型.code:"
        " unknown code table 'payment_kinds' (known: payment_kind, small)",
        f"{path}:{line_of('payee.acount')}: flows.trading-treasury.map.fields.收款方.fields.账号"
        ".path: 'payee.acount' is not a field of the contract of payment_order (contract.json)",
        f"{path}:{line_of('by_scenario:')}: flows.trading-treasury.map.fields.摘要.by_scenario: "
        "no value for scenario 'payment' and no otherwise value: those documents could never be "
        "mapped",
        f"{path}:{line_of('paid:')}: flows.trading-treasury.map.fields.摘要.by_scenario.paid: "
        "payment_order has no scenario 'paid' (known: payment, refund)",
    ]
    for problem in expected:
        assert problem in output, output

    # A malformed map does not load at all, with its line.
    broken = text.replace(
        "金额: {path: amount, format: fen}\n        类型",
        "金额: {path: amount, format: cents}\n        类型",
    )
    broken = broken.replace('行号: "no"', '行号: {path: "no", const: 1}')
    path.write_text(broken)
    code, output = run_cli(monkeypatch, "check", "-c", str(path))
    assert code == 2
    assert (
        f"{path}:{line_of('format: fen}')}: flows.trading-treasury.map.fields.金额.format: "
        "unknown format 'cents'" in output
    )
    assert "行号: give one of path, const, fields or by_scenario (not path and const)" in output


def test_dropping_a_source_field_names_the_downstream_fields_it_breaks_across_derives(
    write_topology: Callable[[str], Topology], tmp_path: Path
) -> None:
    (tmp_path / "contract.json").write_text(json.dumps(CONTRACT))
    topo = write_topology(
        MAPPED.format(treasury="http://127.0.0.1:9", finance="http://127.0.0.1:9")
    )
    old = topo.documents["payment_order"].contract_schema
    new = copy.deepcopy(old)
    assert new is not None
    del new["properties"]["payee"]["properties"]["account"]
    del new["properties"]["pay_before"]
    new["properties"]["kind"] = {"type": "string"}  # any kind now, not pay or refund
    impact = assess(topo, "payment_order", compare(old, new)).to_json()

    [treasury] = [c for c in impact["consumers"] if c["flow"] == TREASURY_FLOW]
    broken = {b["field"]: b["downstream"] for b in treasury["breaks"]}
    # 摘要 is chosen by scenario, and the scenarios are told apart by kind.
    assert broken == {
        "payee.account": ["收款方.账号"],
        "pay_before": ["日期"],
        "kind": ["付款类型", "摘要"],
    }
    assert any("breaks 收款方.账号 downstream" in b["message"] for b in treasury["breaks"])
    # The treasury re-emits 收款方.账号 as the ledger's account: named on the precise path.
    [onward] = [p for p in impact["transitive"] if p["system"] == "ledger"]
    assert onward["fields"] == ["account"] and onward["precise"]
    assert onward["path"] == ["trading", "treasury", "ledger"]

    # A field the map does not read breaks nothing on the mapped flow, whatever reads: says.
    lineage = topo.flows[TREASURY_FLOW].map.lineage()  # type: ignore[union-attr]
    assert lineage["收款方.账号"] == ["payee.account"] and lineage["币种"] == []
    unread = copy.deepcopy(old)
    assert unread is not None
    unread["properties"]["memo"] = {"type": "string"}
    unread["additionalProperties"] = False
    impact = assess(topo, "payment_order", compare(old, unread)).to_json()
    assert TREASURY_FLOW not in [c["flow"] for c in impact["consumers"]]
