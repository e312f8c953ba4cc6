"""A refused row is kept as valid JSON, however long it was."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from interlink.features.sources.queries import MAX_ROW_TEXT, problem_row


def test_a_long_refused_row_is_cut_to_valid_json() -> None:
    row = {"id": 7, "payload": "付" * (MAX_ROW_TEXT * 2)}
    stored = problem_row("orders", datetime.now(UTC), "7", "too big", [], row)
    kept = json.loads(stored["row"])
    assert kept["truncated"] is True
    assert kept["start"].startswith('{"id": 7, "payload": "付')
    assert len(kept["start"]) == MAX_ROW_TEXT


def test_a_short_row_is_kept_whole() -> None:
    row = {"id": 8, "payload": {"金额": "10.00"}}
    stored = problem_row("orders", datetime.now(UTC), "8", "bad", ["x"], row)
    assert json.loads(stored["row"]) == row
