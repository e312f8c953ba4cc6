"""`interlink status` shows the upstream sources the hub reads in a table of their own, from
the ``sources`` section of the status; a topology without sources prints no such table."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from interlink.cli.status import source_table, tables
from interlink.config import loads


def rows(sources: dict[str, Any]) -> list[str]:
    buffer = io.StringIO()
    Console(file=buffer, width=200, markup=False).print(source_table(sources))
    return buffer.getvalue().splitlines()


def source(**extra: Any) -> dict[str, Any]:
    state = {"paused": False, "behind": None, "oldest_unread_age": None, "error": None}
    return {"system": "erp", "kind": "table", "lagging": False, **state, **extra}


def test_each_source_shows_its_lag_pause_and_error() -> None:
    lines = rows(
        {
            "erp-orders": source(behind=12, oldest_unread_age=3725.0, lagging=True),
            "erp-refunds": source(paused=True, behind=0, oldest_unread_age=42.0),
            "erp-vendors": source(error="connection refused"),
        }
    )
    assert "sources" in lines[0]
    header = next(line for line in lines if "oldest unread" in line)
    assert "behind" in header and "paused" in header and "error" in header
    [orders] = [line for line in lines if "erp-orders" in line]
    assert " 12 " in orders and "1h 2m" in orders and "paused" not in orders
    [refunds] = [line for line in lines if "erp-refunds" in line]
    assert "paused" in refunds and "42s" in refunds
    [vendors] = [line for line in lines if "erp-vendors" in line]
    assert "connection refused" in vendors and "table" in vendors


def test_a_source_never_polled_leaves_its_lag_empty() -> None:
    [never] = [line for line in rows({"erp-orders": source()}) if "erp-orders" in line]
    cells = [c.strip() for c in never.split("│")[1:-1]]
    assert cells == ["erp-orders", "erp", "table", "", "", "", ""]


def test_the_sources_table_comes_after_flows_only_when_there_are_sources() -> None:
    topology = loads("systems: {erp: {}, bank: {url: 'http://127.0.0.1:9'}}\n")
    data: dict[str, Any] = {"flows": {}, "systems": {"erp": {"circuit": "closed"}}}
    assert [t.title for t in tables(data, topology)] == ["flows", "systems"]
    data["sources"] = {}
    assert [t.title for t in tables(data, topology)] == ["flows", "systems"]
    data["sources"] = {"erp-orders": source()}
    assert [t.title for t in tables(data, topology)] == ["flows", "sources", "systems"]
