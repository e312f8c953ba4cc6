"""Output for people, as pure functions: durations, times with their zone, alert texts per
kind, the reconciliation's verdict and map check, a system's role in ``status``."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from rich.console import Console

from interlink import times
from interlink.cli.status import system_table
from interlink.config import Topology, loads
from interlink.features.alerts.rules import Event, Message
from interlink.features.alerts.wording import Context
from interlink.features.readiness.checklist import drill_item, notice_item
from interlink.features.reconcile.report import map_suspect, summary_lines, to_markdown

TOPOLOGY = """\
timezone: Asia/Shanghai
systems:
  trading: {title: Trading system}
  treasury:
    title: Treasury
    url: "http://127.0.0.1:9"
    maintenance_notice: 2d
    peak_hours: ["Mon-Fri 09:00-11:30"]
documents:
  payment_order: {key: order_no}
flows:
  trading-treasury:
    {from: trading, to: treasury, document: payment_order, path: /p, give_up_after: 36h}
"""
AT = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)  # 16:00 in Shanghai


@pytest.fixture
def topo(tmp_path: Path) -> Topology:
    return loads(TOPOLOGY, str(tmp_path / "interlink.yaml"))


@pytest.mark.parametrize(
    ("span", "text"),
    [
        (timedelta(days=2), "2 days"),
        (timedelta(days=1), "1 day"),
        (timedelta(hours=1, minutes=30), "1 h 30 min"),
        (timedelta(hours=26, minutes=5), "1 day 2 h"),
        (timedelta(minutes=2, seconds=5), "2 min 5 s"),
        (timedelta(hours=1, seconds=30), "1 h"),
        (timedelta(seconds=45), "45 s"),
        (3600.0, "1 h"),
        (0.25, "250 ms"),
        (timedelta(minutes=-5), "-5 min"),
        (None, "-"),
    ],
)
def test_duration_for_people(span: timedelta | float | None, text: str) -> None:
    assert times.duration(span) == text


def test_local_text_names_the_zone() -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    assert times.local_text(AT, shanghai) == "2026-01-05 16:00 Asia/Shanghai"
    assert times.local_text(AT + timedelta(seconds=7), UTC) == "2026-01-05 08:00:07 UTC"


def _deadline_event() -> Event:
    documents = [
        {"key": f"PO-{n}", "deadline": "2026-01-05T09:00:00+00:00", "status": "held",
         "reason": "held: downstream_down"}
        for n in range(1, 8)
    ]  # fmt: skip
    detail = {
        "flow": "trading-treasury",
        "total": 7,
        "reasons": {"held: downstream_down": 7},
        "lead_seconds": 3600.0,
        "documents": documents,
    }
    return Event(5, AT, "deadline_at_risk", "treasury", "trading-treasury", detail)


def test_a_deadline_alert_reads_as_text_not_as_a_dump(topo: Topology) -> None:
    message = Message("deadline_at_risk", "treasury", "trading-treasury", 1, [_deadline_event()],
                      first_at=AT)  # fmt: skip
    body = message.body(timedelta(minutes=5), None, Context(topo, "https://il.example.com/"))
    first = body.splitlines()[0]
    assert first == (
        "7 documents on flow trading-treasury (trading → treasury) may miss their deadline "
        "within 1 h (7 held: downstream down)."
    )
    assert "key PO-1: due 2026-01-05 17:00 Asia/Shanghai, held: downstream down" in body
    assert "… and 2 more" in body  # five listed of seven
    assert "Since: 2026-01-05 16:00 Asia/Shanghai" in body
    assert "System: Treasury (treasury)" in body
    assert "interlink deliveries --flow trading-treasury --status held" in body
    assert "Console: https://il.example.com/flows/trading-treasury" in body
    assert body.rstrip().endswith("ref: deadline_at_risk events 5")
    for dump in ("lead_seconds", "documents=", "{", "+00:00"):
        assert dump not in body


def test_each_kind_says_what_happened_and_what_to_do(topo: Topology) -> None:
    ctx = Context(topo)
    down = Event(1, AT, "circuit_opened", "treasury", None,
                 {"failures": 3, "detail": "connection refused", "delivery": 4})  # fmt: skip
    body = Message("circuit_opened", "treasury", None, 1, [down]).body(None, None, ctx)
    assert body.startswith("Treasury (treasury) is not answering (last answer: connection")
    assert "held, not lost" in body and "interlink status" in body
    assert "Console:" not in body  # no console address configured

    gave_up = Event(2, AT, "delivery_gave_up", "treasury", "trading-treasury",
                    {"delivery": 9, "detail": "HTTP 503"})  # fmt: skip
    body = Message("delivery_gave_up", "treasury", "trading-treasury", 1, [gave_up]).body(
        None, {9: ("PO-9", "01DOC")}, ctx
    )
    assert "after trying for 1 day 12 h" in body
    assert "key PO-9 (delivery 9, document 01DOC): HTTP 503" in body

    summary = Message("delivery_gave_up", "treasury", "trading-treasury", 40, [gave_up],
                      summary=True)  # fmt: skip
    text = summary.body(timedelta(minutes=5), None, ctx)
    assert text.startswith("In the last 5 min: Interlink stopped retrying 40 deliveries")
    assert "… and 39 more" in text

    window = Event(3, AT, "maintenance_announced", "treasury", None,
                   {"start": "2026-01-06T02:00:00+00:00", "end": "2026-01-06T04:00:00+00:00",
                    "reason": "release 4.2", "affected_flows": [{"flow": "trading-treasury"}],
                    "warnings": ["starts in a peak hour"]})  # fmt: skip
    body = Message("maintenance_announced", "treasury", None, 1, [window]).body(None, None, ctx)
    assert body.startswith(
        "Treasury (treasury) announces maintenance from 2026-01-06 10:00 Asia/Shanghai to "
        "2026-01-06 12:00 Asia/Shanghai (release 4.2)."
    )
    assert "Flows affected: trading-treasury" in body and "Warning: starts in a peak hour" in body


def test_the_subject_keeps_its_brackets() -> None:
    event = Event(1, AT, "delivery_rejected", "treasury", "F", {"delivery": 1})
    assert Message("delivery_rejected", "treasury", "F", 1, [event]).subject() == (
        "[interlink] delivery rejected: F"
    )


def _totals(ours: int = 30, theirs: int = 30) -> dict[str, dict[str, object]]:
    return {
        "ours": {"count": ours, "amount": "300.00"},
        "theirs": {"count": theirs, "amount": "300.00"},
        "difference": {"count": theirs - ours, "amount": "0.00"},
    }


def _report(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "run": 1,
        "flow": "trading-treasury",
        "period": {"since": "2026-01-04T16:00:00+00:00", "until": "2026-01-05T16:00:00+00:00"},
        "source": "export.csv",
        "complete": True,
        "problems": [],
        "problem_count": 0,
        "differences": 30,
        "categories": {"missing": 30, "extra": 28},
        "totals": _totals(),
        "items": [],
    }
    body.update(changes)
    return body


def test_a_map_that_matches_nothing_is_called_out() -> None:
    assert map_suspect(_report()) is not None
    unreadable = _report(
        complete=False,
        problem_count=30,
        categories={"missing": 30},
        totals=_totals(theirs=0),
    )
    assert "(30 unreadable)" in (map_suspect(unreadable) or "")
    # A downstream that really lost a few: the map matched the rest.
    assert map_suspect(_report(categories={"missing": 3, "extra": 0})) is None
    assert map_suspect(_report(categories={"missing": 30, "extra": 2})) is None
    # Too few rows to tell.
    small = _report(totals=_totals(ours=2))
    assert map_suspect(small) is None


def test_the_verdict_comes_first_and_the_period_is_local() -> None:
    lines = summary_lines(_report(), ZoneInfo("Asia/Shanghai"))
    assert lines[0] == "30 difference(s)"
    assert "the column map is likely wrong" in lines[1]
    assert "period 2026-01-05 00:00 Asia/Shanghai .. 2026-01-06 00:00 Asia/Shanghai" in lines
    markdown = to_markdown(_report(), ZoneInfo("Asia/Shanghai"))
    assert markdown.index("**30 difference(s)**") < markdown.index("Source:")
    assert "period 2026-01-05 00:00 Asia/Shanghai to" not in markdown  # one form: ".."
    assert "2026-01-05 00:00 Asia/Shanghai .. 2026-01-06 00:00 Asia/Shanghai" in markdown


def test_an_upstream_only_system_has_no_circuit(topo: Topology) -> None:
    assert topo.role("trading") == "upstream"
    assert topo.role("treasury") == "downstream"
    closed = {"circuit": "closed", "opened_at": None, "next_probe_at": None}
    data = {"systems": {"trading": closed, "treasury": closed}}
    buffer = io.StringIO()
    Console(file=buffer, width=120, markup=False).print(system_table(data, topo))
    [trading] = [line for line in buffer.getvalue().splitlines() if "trading" in line]
    assert "none (source only)" in trading and "closed" not in trading


def test_readiness_words(topo: Topology) -> None:
    assert notice_item(topo.systems["treasury"]).detail.startswith(
        "treasury: notice 2 days, peak hours"
    )
    flow = topo.flows["trading-treasury"]
    existing = drill_item(flow, None, timedelta(days=30), drill_files=["drills/outage.yaml"])
    assert existing.next == "run `interlink drill run drills/outage.yaml`"
    assert "in the last 30 days" in existing.detail
    none = drill_item(flow, None, timedelta(hours=36))
    assert "in the last 1 day 12 h" in none.detail
    assert "write drills/trading-treasury-down.yaml" in none.next
    assert "faults: {treasury: [{fault: down" in none.next
    passed = drill_item(flow, SimpleNamespace(id=1, name="x", finished=AT), timedelta(days=1))
    assert passed.status == "passed"
