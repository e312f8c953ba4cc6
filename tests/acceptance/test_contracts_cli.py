"""``interlink contract …``, ``scenarios`` and ``check`` as real processes, on the example."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from interlink.config import load
from interlink.errors import ConfigError
from interlink.example import write_example
from interlink.features.registry import FEATURES
from interlink.intake import Item
from interlink.service import Hub
from tests.acceptance.conftest import Run


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """The example topology of `interlink init`, written in-process to spare a CLI start."""
    write_example(tmp_path)
    return tmp_path / "interlink.yaml"


def schema(example: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        (example.parent / "contracts" / "payment_order.json").read_text()
    )
    return loaded


def write_json(path: Path, data: Any) -> str:
    path.write_text(json.dumps(data))
    return str(path)


def test_contract_check_exit_codes(example: Path, cli: Callable[..., Run], tmp_path: Path) -> None:
    current = schema(example)
    safe = json.loads(json.dumps(current))
    safe["properties"]["note"] = {"type": "string"}  # optional, open model: a note only
    done = cli("contract", "check", "payment_order", write_json(tmp_path / "safe.json", safe))
    assert done.code == 0, done.out + done.err
    assert "compatible" in done.out

    breaking = json.loads(json.dumps(current))
    breaking["properties"]["kind"]["enum"].append("reversal")
    path = write_json(tmp_path / "breaking.json", breaking)
    report = cli("contract", "check", "payment_order", path, "--json")
    assert report.code == 1
    report = report.json()
    assert report["breaking"] is True
    assert {c["system"] for c in report["consumers"]} == {"treasury", "finance"}

    (tmp_path / "not.json").write_text("{not json")
    done = cli("contract", "check", "payment_order", str(tmp_path / "not.json"))
    assert done.code == 2 and "is not JSON" in done.err
    done = cli("contract", "check", "payment_order", write_json(tmp_path / "bad.json", {"type": 5}))
    assert done.code == 2 and "not a valid JSON Schema" in done.err
    done = cli("contract", "check", "invoice", path)
    assert done.code == 2 and "unknown document type 'invoice'" in done.err


def test_publish_refused_then_forced(
    example: Path, cli: Callable[..., Run], tmp_path: Path
) -> None:
    breaking = schema(example)
    breaking["required"].append("pay_before")
    path = write_json(tmp_path / "v2.json", breaking)
    done = cli("contract", "publish", "payment_order", path)
    assert done.code == 1
    assert "refused" in done.err and "--force --reason" in done.err
    done = cli(
        "contract", "publish", "payment_order", path, "--force", "--reason", "deadlines now due"
    )
    assert done.code == 0, done.err
    assert "published payment_order version 2 (forced)" in done.out
    history = cli("contract", "history", "payment_order", "--json").json()
    assert [(v["version"], v["forced"]) for v in history] == [(1, False), (2, True)]
    assert history[1]["reason"] == "deadlines now due"


def test_scenarios_report_and_release(
    example: Path, cli: Callable[..., Run], tmp_path: Path
) -> None:
    text = example.read_text().replace(
        "    path: /trades\n", "    path: /trades\n    require_scenario: true\n"
    )
    contract = schema(example)
    contract["properties"]["kind"]["enum"].append("bonus")
    (example.parent / "contracts" / "payment_order.json").write_text(json.dumps(contract))
    example.write_text(text)
    orders = [
        {"order_no": n, "kind": k, "amount": "1", "currency": "CNY", "payee_account": "62"}
        for n, k in (("A", "pay"), ("B", "bonus"), ("C", "bonus"))
    ]
    hub = Hub(load(example), features=FEATURES)
    try:
        trading = hub.topology.systems["trading"]
        results = hub.intake.submit_sync(trading, [Item("payment_order", o) for o in orders])
        assert all(isinstance(r, dict) for r in results), results
    finally:
        hub.store.close()

    report = cli("scenarios", "--json").json()
    doc = next(d for d in report["documents"] if d["document"] == "payment_order")
    assert doc["never_seen"] == ["refund"]
    assert doc["unmapped"]["fields"] == {"kind": [{"value": "bonus", "count": 2}]}
    done = cli("scenarios", "release", "--flow", "trading-finance", "--all")
    assert done.code == 0 and "released 2 deliveries (trading-finance 2)" in done.out


def test_check_warns_about_a_read_field_the_contract_lacks(
    example: Path, cli: Callable[..., Run]
) -> None:
    original = example.read_text()
    example.write_text(original.replace("reads: [order_no, kind,", "reads: [order_no, knd,"))
    done = cli("check")
    assert done.code == 0
    line = 1 + next(i for i, t in enumerate(original.splitlines()) if "reads: [order_no" in t)
    assert f"interlink.yaml:{line}: warning: flows.trading-treasury.reads: 'knd'" in done.out


def test_contract_file_that_is_not_json_schema_is_refused_with_its_line(example: Path) -> None:
    original = example.read_text()
    (example.parent / "contracts" / "customer.json").write_text('{"type": "objekt"}')
    with pytest.raises(ConfigError) as caught:
        load(example)
    line = 1 + next(i for i, t in enumerate(original.splitlines()) if "contracts/customer" in t)
    [problem] = caught.value.problems
    assert problem.startswith(f"{example}:{line}: documents.customer.contract: contract file ")
    assert "is not a valid JSON Schema: 'objekt' is not valid" in problem
