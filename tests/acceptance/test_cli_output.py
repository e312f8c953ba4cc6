"""What the person on duty reads, from the ``interlink`` command as a real process: data shown
as it is (never read as Rich markup), durations and periods for people, the verdict of a
reconciliation before its rows, and a hint where there is no topology."""

from __future__ import annotations

import json
from pathlib import Path

from tests.acceptance.conftest import run_cli, write

MARKUP_KEY = "T-[bold]77[/bold]-[x]"

# A newcomer's own project: no drills/ folder, no example files.
CUSTOM = """\
timezone: Asia/Shanghai
database: sqlite:///hub.db
systems:
  trading: {title: Trading}
  treasury:
    title: Treasury
    url: "http://127.0.0.1:9"
    maintenance_notice: 2d
    peak_hours: ["Mon-Fri 09:00-11:30"]
documents:
  payment_order: {key: order_no, amount: amount}
flows:
  trading-treasury: {from: trading, to: treasury, document: payment_order, path: /p}
"""


def _project(tmp_path: Path, orders: list[tuple[str, str]]) -> Path:
    write(tmp_path / "interlink.yaml", CUSTOM)
    docs = [{"order_no": key, "amount": amount} for key, amount in orders]
    (tmp_path / "docs.json").write_text(json.dumps(docs), encoding="utf-8")
    pushed = run_cli("push", "docs.json", "--type", "payment_order", cwd=tmp_path)
    assert pushed.code == 0, pushed.err
    return tmp_path


def test_a_key_with_rich_markup_is_printed_as_it_is(tmp_path: Path) -> None:
    _project(tmp_path, [(MARKUP_KEY, "10.00")])
    listed = run_cli("deliveries", cwd=tmp_path)
    assert listed.code == 0, listed.err
    assert MARKUP_KEY in listed.out
    shown = run_cli("show", MARKUP_KEY, cwd=tmp_path)
    assert shown.code == 0, shown.err
    assert f"payment_order {MARKUP_KEY} rev 1" in shown.out
    repushed = run_cli("repush", "1", "--dry-run", cwd=tmp_path)
    assert repushed.code == 2 and "Traceback" not in repushed.err  # pending: not re-pushable


def test_status_without_a_topology_says_how_to_get_one(tmp_path: Path) -> None:
    result = run_cli("status", cwd=tmp_path)
    assert result.code == 2 and "Traceback" not in result.err
    assert "interlink.yaml: no such file" in result.err
    assert "`interlink init`" in result.err and "-c FILE" in result.err
    elsewhere = run_cli("status", "-c", "nowhere/topology.yaml", cwd=tmp_path)
    assert elsewhere.code == 2 and "check the path given with -c/--config" in elsewhere.err


def test_status_shows_an_upstream_only_system_without_a_circuit(tmp_path: Path) -> None:
    write(tmp_path / "interlink.yaml", CUSTOM)
    result = run_cli("status", cwd=tmp_path)
    assert result.code == 0, result.err
    systems = result.out.split("\nsystems\n", 1)[1].splitlines()
    [trading] = [line for line in systems if line.startswith("│ trading ")]
    assert "upstream" in trading and "none (source only)" in trading and "closed" not in trading
    [treasury] = [line for line in systems if line.startswith("│ treasury ")]
    assert "downstream" in treasury and "closed" in treasury


def test_readiness_prints_durations_and_a_drill_a_custom_project_can_write(
    tmp_path: Path,
) -> None:
    write(tmp_path / "interlink.yaml", CUSTOM)
    result = run_cli("readiness", "--json", cwd=tmp_path)
    assert result.code == 1
    items = {i["item"]: i for i in result.json()["flows"][0]["items"]}
    assert items["maintenance notice and peak hours declared"]["detail"].startswith(
        "treasury: notice 2 days, peak hours"
    )
    drill = items["outage drill passed"]
    assert "the last 30 days" in drill["detail"]
    assert "treasury-down-at-peak" not in drill["next"]  # a file this project does not have
    assert "write drills/trading-treasury-down.yaml" in drill["next"]
    assert "docs/drills.md" in drill["next"]
    table = run_cli("readiness", cwd=tmp_path)
    assert "notice 2 days" in table.out and "0:00:00" not in table.out


def test_readiness_names_a_drill_file_that_exists(tmp_path: Path) -> None:
    write(tmp_path / "interlink.yaml", CUSTOM)
    (tmp_path / "drills").mkdir()
    write(
        tmp_path / "drills" / "outage.yaml",
        """\
        name: treasury down
        flows: [trading-treasury]
        documents:
          - {type: payment_order, count: 3, payload: {order_no: "D-{n}", amount: "1.00"}}
        faults:
          treasury: [{fault: down, at: 0s, for: 1s}]
        """,
    )
    result = run_cli("readiness", "--json", cwd=tmp_path)
    items = {i["item"]: i for i in result.json()["flows"][0]["items"]}
    assert items["outage drill passed"]["next"] == "run `interlink drill run drills/outage.yaml`"


def test_reconcile_with_a_wrong_map_says_so_before_any_row(tmp_path: Path) -> None:
    orders = [(f"A{n}", f"{n}.00") for n in range(1, 31)]
    _project(tmp_path, orders)
    rows = "\n".join(f"A{n},{n}.00,ok" for n in range(1, 31))
    (tmp_path / "export.csv").write_text(f"order_no,amount,status\n{rows}\n", encoding="utf-8")
    # Key and amount swapped: every amount is unreadable, every delivery missing.
    args = ("reconcile", "trading-treasury", "--file", "export.csv")
    wrong = run_cli(*args, "--map", "key=amount,amount=order_no", cwd=tmp_path)
    assert wrong.code == 2, wrong.err
    lines = wrong.out.splitlines()
    assert lines[0].startswith("INCOMPLETE: 30 row(s)")
    assert "the column map is likely wrong" in lines[1]
    assert "do not re-push" in lines[1]
    assert wrong.out.count("│ missing ") <= 5  # a few examples, not thirty rows
    assert "--repush-missing" not in wrong.out
    # Key read from the amount column: everything readable, nothing matches.
    shifted = run_cli(*args, "--map", "key=status,amount=amount", cwd=tmp_path)
    assert shifted.code == 1, shifted.err
    assert "the column map is likely wrong" in shifted.out.splitlines()[1]
    refused = run_cli(*args, "--map", "key=status,amount=amount", "--repush-missing", cwd=tmp_path)
    assert refused.code == 2 and "not re-pushing" in refused.err
    assert "the column map is likely wrong" in refused.err


def test_reconcile_prints_its_period_in_the_topology_zone(tmp_path: Path) -> None:
    _project(tmp_path, [("A1", "1.00")])
    (tmp_path / "export.csv").write_text("order_no,amount\nA1,1.00\n", encoding="utf-8")
    result = run_cli(
        "reconcile", "trading-treasury", "--file", "export.csv", "--since", "2026-01-05",
        "--map", "key=order_no,amount=amount",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.code == 0, result.out + result.err
    assert result.out.splitlines()[0].startswith("no differences")
    assert "period 2026-01-05 00:00 Asia/Shanghai .. -" in result.out
    assert "+00:00" not in result.out


def test_prune_is_a_command_and_names_its_cutoff_in_the_zone(tmp_path: Path) -> None:
    write(tmp_path / "interlink.yaml", CUSTOM)
    result = run_cli("prune", "--older-than", "90d", "--dry-run", cwd=tmp_path)
    assert result.code == 0, result.err
    assert result.out.startswith("0 documents received before ")
    assert "Asia/Shanghai (90 days ago) would be removed" in result.out
