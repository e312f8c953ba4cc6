"""`interlink status` shows a file flow's files not sent and results overdue in its flows
table, as ``--json`` carries them; a topology without file flows has no such column."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from interlink.cli.status import flow_table


def flow(**extra: Any) -> dict[str, Any]:
    counts = {"pending": 0, "in_flight": 0, "held": {}, "delivered": 3, "dead": 0}
    return {"from": "trading", "to": "bank", **counts, **extra}


def rows(data: dict[str, Any]) -> list[str]:
    buffer = io.StringIO()
    Console(file=buffer, width=200, markup=False).print(flow_table(data))
    return buffer.getvalue().splitlines()


def test_file_flows_show_their_files_and_other_flows_leave_it_empty() -> None:
    data = {
        "flows": {
            "to-bank": flow(files={"not_sent": 2, "result_overdue": 1}),
            "to-bank-2": flow(files={"not_sent": 0, "result_overdue": 0}),
            "to-treasury": flow(),
        }
    }
    lines = rows(data)
    assert any("files" in line for line in lines[:4])
    [bank] = [line for line in lines if "to-bank " in line]
    assert "2 not sent, 1 result overdue" in bank
    [quiet] = [line for line in lines if "to-bank-2" in line]
    assert quiet.rstrip(" │").endswith("ok")
    [treasury] = [line for line in lines if "to-treasury" in line]
    assert "ok" not in treasury and "not sent" not in treasury


def test_without_file_flows_there_is_no_files_column() -> None:
    assert not any("files" in line for line in rows({"flows": {"to-treasury": flow()}}))
