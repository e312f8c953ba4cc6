"""File-drop sources on real files: CSV in GBK and UTF-8 with a BOM, XLSX, NDJSON; per-line
problems, done/ and failed/ folders, and a file dropped again taken once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from interlink.clock import FakeClock
from interlink.config import Topology
from interlink.features.registry import FEATURES
from interlink.features.sources.service import sources
from interlink.service import Hub

TOPOLOGY = """\
timezone: Asia/Shanghai
database: sqlite:///hub.db
systems:
  trading:
    sources:
      month-end:
        kind: files
        path: drop
        document: 付款单
        batch: 2
        settle: 0s
  treasury:
    url: http://127.0.0.1:9
documents:
  付款单:
    key: 付款单号
    contract: contract.json
flows:
  trading-treasury:
    from: trading
    to: treasury
    document: 付款单
    path: /payments
"""
CONTRACT = {
    "type": "object",
    "required": ["付款单号", "金额"],
    "properties": {"付款单号": {"type": "string"}, "金额": {"type": ["string", "number"]}},
}
CSV = "付款单号,金额,备注\nFK-1,100.00,首付\nFK-2,,缺金额\nFK-3,7.50,\n"


@pytest.fixture
def hub(
    write_topology: Callable[[str], Topology], tmp_path: Path, clock: FakeClock
) -> Iterator[Hub]:
    (tmp_path / "contract.json").write_text(json.dumps(CONTRACT, ensure_ascii=False))
    (tmp_path / "drop").mkdir()
    h = Hub(write_topology(TOPOLOGY), clock=clock, features=FEATURES)
    yield h
    h.store.close()


def keys(hub: Hub) -> list[str]:
    from sqlalchemy import select

    from interlink.store.schema import documents

    query = select(documents.c.key).order_by(documents.c.key)
    return [r[0] for r in hub.store.read_sync(lambda c: list(c.execute(query)))]


@pytest.mark.parametrize("encoding", ["gbk", "utf-8-sig", "utf-8"])
def test_csv_in_gbk_or_utf8_with_a_bad_line(hub: Hub, tmp_path: Path, encoding: str) -> None:
    drop = tmp_path / "drop"
    (drop / "2026-11.csv").write_bytes(CSV.encode(encoding))

    result = sources(hub).poll("month-end")

    assert (result["file"], result["read"], result["accepted"], result["refused"]) == (
        "2026-11.csv", 3, 2, 1,
    )  # fmt: skip
    assert keys(hub) == ["FK-1", "FK-3"]
    problem = sources(hub).problems("month-end")[0]
    assert problem["ref"] == "2026-11.csv:3" and problem["row"] == {
        "付款单号": "FK-2",
        "备注": "缺金额",
    }
    assert (drop / "done" / "2026-11.csv").exists() and not (drop / "2026-11.csv").exists()
    doc = hub.documents("FK-1")[0]
    assert doc.payload == {"付款单号": "FK-1", "金额": "100.00", "备注": "首付"}


def test_the_same_file_dropped_again_is_taken_once(hub: Hub, tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    (drop / "a.csv").write_text(CSV, encoding="utf-8")
    service = sources(hub)
    assert service.poll("month-end")["accepted"] == 2
    (drop / "a.csv").write_text(CSV, encoding="utf-8")
    again = service.poll("month-end")
    assert again["read"] == 0 and "already taken" in again["skipped"]
    done = sorted(p.name for p in (drop / "done").iterdir())
    assert len(done) == 2 and "a.csv" in done  # kept beside the first, not over it
    # The same rows under another name: identity by source makes them duplicates.
    (drop / "b.csv").write_text(CSV, encoding="utf-8")
    other = service.poll("month-end")
    assert (other["accepted"], other["duplicate"]) == (0, 2)
    assert keys(hub) == ["FK-1", "FK-3"]
    assert service.poll("month-end") == {
        "source": "month-end", "paused": False, "read": 0, "accepted": 0, "duplicate": 0,
        "refused": 0, "behind": 0,
    }  # fmt: skip


def test_xlsx_and_ndjson_and_a_file_that_cannot_be_read(hub: Hub, tmp_path: Path) -> None:
    from openpyxl import Workbook

    drop = tmp_path / "drop"
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["付款单号", "金额"])
    sheet.append(["X-1", 12.5])
    sheet.append([None, None])
    sheet.append(["X-2", 3])
    book.save(drop / "x.xlsx")
    (drop / "n.ndjson").write_text(
        '{"付款单号": "N-1", "金额": "1.00"}\nnot json\n\n{"金额": "2.00"}\n', encoding="utf-8"
    )
    (drop / "broken.xlsx").write_bytes(b"not a zip")
    service = sources(hub)
    results = [service.poll("month-end") for _ in range(4)]
    by_file = {r.get("file"): r for r in results}

    assert by_file["x.xlsx"]["accepted"] == 2
    assert (by_file["n.ndjson"]["accepted"], by_file["n.ndjson"]["refused"]) == (1, 2)
    assert "not a readable XLSX" in by_file["broken.xlsx"]["failed"]
    assert (drop / "failed" / "broken.xlsx").exists()
    assert keys(hub) == ["N-1", "X-1", "X-2"]
    refs = sorted(p["ref"] for p in service.problems("month-end"))
    assert refs == ["broken.xlsx", "n.ndjson:2", "n.ndjson:4"]
    assert hub.documents("X-1")[0].payload == {"付款单号": "X-1", "金额": 12.5}
    status = service.status()[0]
    assert (status["accepted"], status["refused"], status["behind"]) == (3, 3, 0)


async def test_a_scheduled_source_polls_at_its_time_and_catches_up_a_missed_one(
    write_topology: Callable[[str], Topology], tmp_path: Path, clock: FakeClock
) -> None:
    """``schedule: ["22:00"]`` in Asia/Shanghai: polled at 10:00 (the clock's start), the
    source is not due until 22:00; the service, back at 23:30 after missing it, takes the
    files at once, through every batch, and then waits for tomorrow's."""
    (tmp_path / "contract.json").write_text(json.dumps(CONTRACT, ensure_ascii=False))
    drop = tmp_path / "drop"
    drop.mkdir()
    text = TOPOLOGY.replace(
        "        settle: 0s\n", '        settle: 0s\n        schedule: ["22:00"]\n'
    )
    hub = Hub(write_topology(text), clock=clock, features=FEATURES)
    service = sources(hub)
    try:
        assert service.poll("month-end")["read"] == 0  # 10:00 local: polled, nothing there
        assert service.due_now("month-end") is None
        (drop / "a.csv").write_text("付款单号,金额\nFK-1,1.00\nFK-2,2.00\nFK-3,3.00\n")
        # Not due: a loop started now leaves the file alone (one polling by its interval would
        # take it at once).
        stop = asyncio.Event()
        loop = asyncio.create_task(service.loop(stop))
        await asyncio.sleep(0.3)
        stop.set()
        await loop
        assert (drop / "a.csv").exists()
        clock.advance(timedelta(hours=13, minutes=30))  # 23:30 local: 22:00 was missed
        assert service.due_now("month-end") == datetime(2026, 1, 5, 14, 0, tzinfo=UTC)
        stop = asyncio.Event()
        loop = asyncio.create_task(service.loop(stop))
        try:
            for _ in range(500):  # the loop's own progress, not a retry: at most 5 s
                if (drop / "done" / "a.csv").exists() and service.due_now("month-end") is None:
                    break
                await asyncio.sleep(0.01)
        finally:
            stop.set()
            await loop
        assert (drop / "done" / "a.csv").exists()
        assert (
            hub.store.read_sync(
                lambda conn: conn.exec_driver_sql("SELECT COUNT(*) FROM documents").scalar_one()
            )
            == 3
        )  # batch 2: two polls
        assert service.due_now("month-end") is None  # until 22:00 tomorrow
        [row] = service.status()
        assert (row["schedule"], row["next_poll_at"]) == (["22:00"], "2026-01-06T14:00:00+00:00")
    finally:
        hub.store.close()
