"""The CLI as a process: init, check, push, status, deliveries, show, repush, flows."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.acceptance.conftest import Run, order, write

Cli = Callable[..., Run]

COMMANDS = [
    [],
    ["init"],
    ["check"],
    ["serve"],
    ["worker"],
    ["push"],
    ["status"],
    ["deliveries"],
    ["show"],
    ["repush"],
    ["flows"],
    ["flows", "pause"],
    ["flows", "resume"],
    ["demo"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "interlink")
def test_every_command_has_help(cli: Cli, command: list[str]) -> None:
    result = cli(*command, "--help")
    assert result.code == 0, result.err
    assert "Usage:" in result.out
    if command and command[0] not in ("demo", "flows"):
        assert "--config" in result.out


def test_init_then_check(tmp_path: Path, cli: Cli) -> None:
    result = cli("init")
    assert result.code == 0, result.err
    assert (tmp_path / "interlink.yaml").is_file()
    assert (tmp_path / "contracts" / "payment_order.json").is_file()
    assert "interlink check" in result.out and "TRADING_TOKEN" in result.out
    # Generated tokens for serve and the trading system, loaded as the next steps say.
    assert (tmp_path / "interlink.env").is_file()
    assert "set -a; . ./interlink.env; set +a" in result.out

    result = cli("check")
    assert result.code == 0, result.err
    assert "4 systems, 2 documents, 3 flows" in result.out
    assert result.out.strip().endswith("ok")


def test_init_keeps_an_existing_file(cli: Cli, example: Path) -> None:
    result = cli("init")
    assert result.code == 2
    assert "already exists" in result.err
    assert cli("init", "--force").code == 0


def test_init_into_a_folder_and_check_with_config(tmp_path: Path, cli: Cli) -> None:
    assert cli("init", "hub").code == 0
    result = cli("check", "-c", "hub/interlink.yaml")
    assert result.code == 0, result.err


def test_check_lists_problems_with_lines(tmp_path: Path, cli: Cli) -> None:
    write(
        tmp_path / "interlink.yaml",
        """\
        systems:
          trading: {}
          finance: {url: "http://127.0.0.1:9"}
        flows:
          trading-finance:
            from: trading
            to: nowhere
            document: payment_order
        """,
    )
    result = cli("check")
    assert result.code == 2
    assert "interlink.yaml:7:" in result.err
    assert result.out == ""


def test_check_without_a_file(cli: Cli) -> None:
    result = cli("check", "-c", "missing.yaml")
    assert result.code == 2
    assert "missing.yaml: no such file" in result.err


def test_push_json_ndjson_and_csv(tmp_path: Path, cli: Cli, example: Path) -> None:
    array = write(
        tmp_path / "orders.json",
        json.dumps([order("PO-1"), order("PO-2"), order("PO-2", "refund")], indent=2),
    )
    result = cli("push", str(array), "--type", "payment_order")
    assert result.code == 0, result.out + result.err
    assert "3 read, 3 accepted, 0 duplicates, 0 refused" in result.out

    lines = [{"type": "payment_order", "payload": order(f"PO-{i}")} for i in range(3, 6)]
    ndjson = write(tmp_path / "more.ndjson", "\n".join(json.dumps(x) for x in lines) + "\n")
    result = cli("push", str(ndjson))
    assert result.code == 0, result.out + result.err
    assert "3 accepted" in result.out

    customers = write(tmp_path / "customers.csv", "customer_id,name\nC1,Li Wei\nC2,Wang Fang\n")
    result = cli("push", str(customers), "--type", "customer")
    assert result.code == 0, result.out + result.err
    assert "2 accepted" in result.out

    # The same file again: nothing new.
    result = cli("push", str(array), "--type", "payment_order")
    assert "0 accepted, 3 duplicates" in result.out

    status = cli("status", "--json").json()
    flows = status["flows"]
    # PO-2's refund waits behind its payment on the ordered flows.
    assert flows["trading-treasury"]["pending"] == 5
    assert flows["trading-treasury"]["held"] == {"blocked": 1}
    assert flows["trading-finance"]["pending"] == 5
    assert flows["trading-member"]["pending"] == 2
    assert status["systems"]["treasury"]["circuit"] == "closed"


def test_push_a_single_object(tmp_path: Path, cli: Cli, example: Path) -> None:
    one = write(
        tmp_path / "one.json",
        json.dumps({"type": "payment_order", "payload": order("PO-9")}, indent=2),
    )
    result = cli("push", str(one))
    assert result.code == 0, result.out + result.err
    assert "1 accepted" in result.out


def test_push_refuses_bad_lines_and_keeps_the_good(tmp_path: Path, cli: Cli, example: Path) -> None:
    ndjson = write(
        tmp_path / "mixed.ndjson",
        "\n".join(
            [
                json.dumps(order("PO-1")),
                '{"order_no": "PO-2", "kind": ',
                json.dumps({**order("PO-3"), "currency": "yuan"}),
                json.dumps(order("PO-4")),
            ]
        )
        + "\n",
    )
    result = cli("push", str(ndjson), "--type", "payment_order")
    assert result.code == 1
    assert "2 accepted, 0 duplicates, 2 refused" in result.out
    assert "line 2: not valid JSON" in result.out
    assert "line 3: payment_order document violates its contract" in result.out

    stored = cli("deliveries", "--flow", "trading-finance", "--json").json()
    assert sorted(d["key"] for d in stored) == ["PO-1", "PO-4"]


def test_push_csv_row_with_wrong_field_count(tmp_path: Path, cli: Cli, example: Path) -> None:
    rows = write(tmp_path / "c.csv", "customer_id,name\nC1,Li\nC2,Wang,extra\nC3,Chen\n")
    result = cli("push", str(rows), "--type", "customer")
    assert result.code == 1
    assert "line 3: 3 fields where the header has 2" in result.out
    assert "2 accepted" in result.out


def test_push_needs_a_type_for_csv_and_a_known_source(
    tmp_path: Path, cli: Cli, example: Path
) -> None:
    rows = write(tmp_path / "c.csv", "customer_id,name\nC1,Li\n")
    result = cli("push", str(rows))
    assert result.code == 2
    assert "--type" in result.err

    result = cli("push", str(rows), "--type", "customer", "--source", "nobody")
    assert result.code == 2
    assert "unknown system 'nobody'" in result.err

    result = cli("push", "absent.json")
    assert result.code == 2
    assert "no such file" in result.err


def test_push_with_a_rate(tmp_path: Path, cli: Cli, example: Path) -> None:
    rows = write(
        tmp_path / "c.csv", "customer_id,name\n" + "".join(f"C{i},N{i}\n" for i in range(20))
    )
    result = cli("push", str(rows), "--type", "customer", "--rate", "100")
    assert result.code == 0, result.out + result.err
    assert "20 accepted" in result.out


@pytest.fixture
def pushed(tmp_path: Path, cli: Cli, example: Path) -> Path:
    orders = [order("PO-1"), order("PO-2"), order("PO-2", "refund"), order("123")]
    path = write(tmp_path / "orders.json", json.dumps(orders))
    assert cli("push", str(path), "--type", "payment_order").code == 0
    return path


def test_deliveries_json_and_table(cli: Cli, pushed: Path) -> None:
    found = cli("deliveries", "--json").json()
    assert len(found) == 8
    assert {"id", "flow", "key", "revision", "status", "reason", "attempts"} <= set(found[0])
    assert [d["id"] for d in found] == sorted((d["id"] for d in found), reverse=True)

    held = cli("deliveries", "--status", "held", "--json").json()
    assert {(d["flow"], d["key"], d["reason"]) for d in held} == {
        ("trading-treasury", "PO-2", "blocked"),
        ("trading-finance", "PO-2", "blocked"),
    }

    page = cli("deliveries", "--limit", "3", "--json").json()
    rest = cli("deliveries", "--before", str(page[-1]["id"]), "--json").json()
    assert len(page) == 3 and len(rest) == 5

    table = cli("deliveries", "--key", "PO-2")
    assert table.code == 0
    assert "held: blocked" in table.out and "trading-treasury" in table.out


def test_deliveries_refuses_bad_filters(cli: Cli, pushed: Path) -> None:
    result = cli("deliveries", "--since", "yesterday")
    assert result.code == 2
    assert "--since: 'yesterday' is not an ISO 8601 time" in result.err

    result = cli("deliveries", "--flow", "nowhere")
    assert result.code == 2
    assert "unknown flow 'nowhere'" in result.err

    result = cli("deliveries", "--status", "lost")
    assert result.code == 2
    assert "unknown status 'lost'" in result.err

    assert cli("deliveries", "--since", "2020-01-01T00:00", "--json").json()
    assert cli("deliveries", "--since", "2999-01-01T00:00+08:00", "--json").json() == []


def test_show_by_key_id_and_delivery(cli: Cli, pushed: Path) -> None:
    result = cli("show", "PO-2")
    assert result.code == 0, result.err
    assert "payment_order PO-2 rev 1" in result.out
    assert "payment_order PO-2 rev 2" in result.out
    assert "refund" in result.out
    assert "trading-treasury → treasury" in result.out

    docs = cli("show", "PO-2", "--json").json()["documents"]
    assert [d["revision"] for d in docs] == [1, 2]
    assert docs[1]["scenario"] == "refund"
    assert {d["flow"] for d in docs[0]["deliveries"]} == {"trading-treasury", "trading-finance"}

    by_id = cli("show", docs[0]["id"], "--json").json()["documents"]
    assert [d["id"] for d in by_id] == [docs[0]["id"]]

    delivery_id = docs[0]["deliveries"][0]["id"]
    one = cli("show", str(delivery_id), "--json").json()["delivery"]
    assert one["id"] == delivery_id and one["attempt_log"] == []

    # A numeric business key is found too when --type says what it is.
    numeric = cli("show", "123", "--type", "payment_order", "--json").json()["documents"]
    assert numeric[0]["key"] == "123"

    missing = cli("show", "PO-404")
    assert missing.code == 2
    assert "no document with id or key 'PO-404'" in missing.err


def test_repush_dry_run_and_confirmation(cli: Cli, pushed: Path) -> None:
    result = cli("repush", "--status", "delivered", "--dry-run")
    assert result.code == 0, result.err
    assert "0 deliveries would be re-pushed" in result.out

    preview = cli("repush", "--flow", "trading-finance", "--dry-run", "--json").json()
    assert preview["count"] == 0 and preview["dry_run"] is True

    # No terminal to ask at, and no --yes: refused, nothing done.
    result = cli("repush", "--flow", "trading-finance")
    assert result.code == 2
    assert "--yes" in result.err

    result = cli("repush", "--status", "pending", "--yes")
    assert result.code == 2
    assert "dead or delivered" in result.err

    result = cli("repush", "1")
    assert result.code == 2
    assert "only dead or delivered ones are re-pushed" in result.err


def test_flows_pause_and_resume(cli: Cli, pushed: Path) -> None:
    result = cli("flows", "pause", "trading-finance", "--note", "finance closes the books")
    assert result.code == 0, result.err
    assert "3 pending deliveries held" in result.out

    status = cli("status", "--json").json()["flows"]["trading-finance"]
    assert status["hold"]["reason"] == "paused"
    assert status["hold"]["by"].startswith("cli:")
    assert status["hold"]["note"] == "finance closes the books"
    assert status["pending"] == 0 and status["held"]["paused"] == 3

    table = cli("status")
    assert table.code == 0 and "paused by cli:" in table.out

    result = cli("flows", "resume", "trading-finance")
    assert result.code == 0, result.err
    status = cli("status", "--json").json()["flows"]["trading-finance"]
    assert status["hold"] is None and status["pending"] == 3

    result = cli("flows", "pause", "nowhere")
    assert result.code == 2
    assert "unknown flow 'nowhere'" in result.err


def test_bad_usage_exits_2(cli: Cli, example: Path) -> None:
    result = cli("deliveries", "--limit", "zero")
    assert result.code == 2
    result = cli("nonsense")
    assert result.code == 2


def test_push_asks_for_the_source_when_several_send_the_type(tmp_path: Path, cli: Cli) -> None:
    write(
        tmp_path / "interlink.yaml",
        """\
        database: sqlite:///hub.db
        systems:
          shop: {}
          branch: {}
          member: {url: "http://127.0.0.1:9"}
        documents:
          customer: {key: customer_id}
        flows:
          shop-member: {from: shop, to: member, document: customer}
          branch-member: {from: branch, to: member, document: customer}
        """,
    )
    rows = write(tmp_path / "c.csv", "customer_id,name\nC1,Li\n")
    result = cli("push", str(rows), "--type", "customer")
    assert result.code == 2
    assert "branch, shop all send 'customer' documents; say which with --source" in result.err

    result = cli("push", str(rows), "--type", "customer", "--source", "shop")
    assert result.code == 0, result.err
    assert cli("status", "--json").json()["flows"]["shop-member"]["pending"] == 1
