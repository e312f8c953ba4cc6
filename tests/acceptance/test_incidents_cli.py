"""`interlink incidents` as real processes, as people and scripts use them. (The other
subcommands run in-process in tests/integration/test_incidents_commands.py: each process
start costs seconds on this machine.)"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

from tests.acceptance.conftest import Run, write

TOPOLOGY = """\
timezone: Asia/Shanghai
database: sqlite:///hub.db
systems:
  trading: {}
  treasury:
    url: http://127.0.0.1:9
documents:
  payment_order: {key: order_no}
flows:
  trading-treasury: {from: trading, to: treasury, document: payment_order}
"""


def test_new_list_resolve_export(tmp_path: Path, cli: Callable[..., Run]) -> None:
    config = str(write(tmp_path / "interlink.yaml", TOPOLOGY))
    made = cli(
        "incidents", "new", "-c", config,
        "--title", "Treasury refuses refunds",
        "--flow", "trading-treasury",
        "--severity", "high",
        "--category", "rejected",
        "--description", "422 on every refund since 09:00",
        "--json",
    )  # fmt: skip
    assert made.code == 0, made.err
    incident = made.json()
    assert incident["systems"] == ["treasury", "trading"]
    assert incident["registered_by"].startswith("cli:")

    listed = cli("incidents", "list", "-c", config, "--status", "open", "--json")
    assert [i["title"] for i in listed.json()] == ["Treasury refuses refunds"]
    done = cli(
        "incidents", "resolve", str(incident["id"]), "-c", config,
        "--resolution", "treasury enabled refunds in CNH",
    )  # fmt: skip
    assert done.code == 0, done.err

    out = tmp_path / "incidents.csv"
    assert cli("incidents", "export", "-c", config, "--output", str(out)).code == 0
    [row] = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert row["resolution"] == "treasury enabled refunds in CNH"
    refused = cli("incidents", "export", "-c", config, "--format", "xml")
    assert refused.code == 2 and "csv or md" in refused.err
