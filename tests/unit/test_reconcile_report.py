"""The report as people read it: the verdict, CSV and Markdown."""

from __future__ import annotations

import csv
import io
from typing import Any

from interlink.features.reconcile.report import (
    ITEM_COLUMNS,
    summary_lines,
    to_csv,
    to_markdown,
    verdict,
)


def report(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "run": 3,
        "flow": "trading-treasury",
        "period": {"since": "2026-01-04T16:00:00+00:00", "until": "2026-01-05T16:00:00+00:00"},
        "source": "export.csv",
        "complete": True,
        "problems": [],
        "problem_count": 0,
        "differences": 1,
        "categories": {"missing": 1, "timing": 2},
        "totals": {
            "ours": {"count": 2, "amount": "30.00"},
            "theirs": {"count": 1, "amount": "10.00"},
            "difference": {"count": -1, "amount": "-20.00"},
        },
        "items": [
            {
                "category": "missing",
                "key": "A|2",
                "revision": 1,
                "ours_amount": "20.00",
                "detail": "delivered, not in their records",
            },
        ],
    }
    body.update(changes)
    return body


def test_verdicts() -> None:
    assert verdict(report()) == "1 difference(s)"
    assert verdict(report(differences=0)) == "no differences (2 timing difference(s))"
    incomplete = report(differences=0, complete=False, problem_count=3, problems=["line 2: x"])
    assert verdict(incomplete).startswith("INCOMPLETE: 3 row(s)")
    lines = summary_lines(incomplete)
    assert "problem: line 2: x" in lines and "... and 2 more" in lines
    assert not any("no differences" in line for line in lines)


def test_csv_has_one_row_per_item() -> None:
    rows = list(csv.reader(io.StringIO(to_csv(report()))))
    assert rows[0] == list(ITEM_COLUMNS)
    assert rows[1][:4] == ["missing", "A|2", "1", "20.00"]


def test_markdown_escapes_and_totals() -> None:
    text = to_markdown(report())
    assert "# Reconciliation of trading-treasury" in text
    assert "| missing | 1 |" in text and "| difference | -1 | -20.00 |" in text
    assert "A\\|2" in text
