"""`interlink check` as a process (issue 14): errors exit 2 with `file:line: message` and print
nothing on stdout; warnings print `file:line: warning: ...` and still end with "ok" (exit 0).
Also: a contract violation pushed from a file names the field and the reason."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.acceptance.conftest import Run, order, write

Cli = Callable[..., Run]

TOPOLOGY = """\
database: {database}
systems:
  trading:
    {token}
    contacts: [{{role: dev, email: dev@example.com}}]
  treasury: {{url: "http://127.0.0.1:9"}}
documents:
  payment_order:
    key: order_no
    deadline: pay_before
    contract: order.json
    scenarios:
      - {{name: payment, direction: forward, when: {{kind: pay}}}}
      - {{name: again, direction: forward, when: {{kind: [pay]}}}}
flows:
  trading-treasury: {{from: trading, to: treasury, document: payment_order}}
"""


def setup(tmp_path: Path, database: str = "sqlite:///hub.db", token: str = "") -> None:
    (tmp_path / "order.json").write_text(json.dumps({"properties": {"order_no": {}, "kind": {}}}))
    write(
        tmp_path / "interlink.yaml",
        TOPOLOGY.format(database=database, token=token or "title: Trading"),
    )


def test_errors_exit_2_each_with_its_line(tmp_path: Path, cli: Cli) -> None:
    setup(tmp_path, database="sqlit:///hub.db")
    result = cli("check")
    assert result.code == 2
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert lines[0].startswith("interlink.yaml:1: database: unknown database scheme 'sqlit'")
    assert "did you mean sqlite?" in lines[0]
    assert lines[1].startswith(
        "interlink.yaml:14: documents.payment_order.scenarios[1].when: scenario 'again' matches "
        "the same documents by the same rule as 'payment' (line 13)"
    )


def test_warnings_print_with_lines_and_check_passes(tmp_path: Path, cli: Cli) -> None:
    setup(tmp_path)
    path = tmp_path / "interlink.yaml"
    path.write_text(path.read_text().replace("      - {name: again, direction: forward, "
                                             "when: {kind: [pay]}}\n", ""))  # fmt: skip
    result = cli("check")
    assert result.code == 0, result.err
    found = [line for line in result.out.splitlines() if ": warning: " in line]
    assert [w.split(": warning: ")[0].rsplit(":", 1)[1] for w in found] == ["3", "5", "10"]
    assert "systems.trading: sends trading-treasury but has no token_env" in found[0]
    assert "alerts.smtp is not set: no alert mail can be sent" in found[1]
    assert "'pay_before' is not defined by the contract of payment_order" in found[2]
    assert result.out.strip().endswith("ok")


def test_a_pushed_violation_names_the_field_and_why(
    tmp_path: Path, cli: Cli, example: Path
) -> None:
    bad = write(tmp_path / "bad.json", json.dumps({**order("PO-9"), "pay_before": "2026-13-01"}))
    result = cli("push", str(bad), "--type", "payment_order")
    assert result.code == 1
    assert (
        '$.pay_before: "2026-13-01" is not a valid date-time (RFC 3339, '
        "e.g. 2026-01-31T17:00:00+08:00)" in result.out
    )
