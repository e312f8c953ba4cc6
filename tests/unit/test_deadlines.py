"""Deadline detection: which stage a delivery is in, why it is stuck, and what one check
reports (each delivery once at risk, once missed)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from interlink.features.deadlines.service import (
    AT_RISK,
    MISSED,
    event_detail,
    plan_reports,
    stage,
    why,
)

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.mark.parametrize(
    ("deadline", "expected"),
    [
        (NOW + 2 * HOUR, None),
        (NOW + HOUR + timedelta(seconds=1), None),
        (NOW + HOUR, AT_RISK),  # exactly the lead time ahead
        (NOW + timedelta(minutes=1), AT_RISK),
        (NOW, MISSED),  # at the deadline
        (NOW - HOUR, MISSED),
    ],
)
def test_stage(deadline: datetime, expected: str | None) -> None:
    assert stage(deadline, NOW, HOUR) == expected


@pytest.mark.parametrize(
    ("status", "reason", "failures", "error", "text"),
    [
        ("held", "maintenance", 0, None, "held: maintenance"),
        ("held", "downstream_down", 3, "503", "held: downstream_down"),
        ("dead", "rejected", 1, "422", "dead: rejected"),
        ("dead", "gave_up", 9, None, "dead: gave_up"),
        ("in_flight", None, 0, None, "sending"),
        ("pending", None, 2, "HTTP 503", "retrying after 2 failure(s): HTTP 503"),
        ("pending", None, 0, None, "queued"),
    ],
)
def test_why(status: str, reason: str | None, failures: int, error: str | None, text: str) -> None:
    assert why(status, reason, failures, error) == text


@dataclass
class Row:
    id: int
    deadline: datetime
    status: str = "held"
    reason: str | None = "maintenance"
    failures: int = 0
    last_error: str | None = None
    at_risk_at: datetime | None = None
    missed_at: datetime | None = None
    document_id: str = "doc"
    key: str = "K"


def test_plan_reports_once_per_stage() -> None:
    rows = [
        Row(1, NOW + timedelta(minutes=30)),  # newly at risk
        Row(2, NOW + timedelta(minutes=30), at_risk_at=NOW - HOUR),  # already reported
        Row(3, NOW - timedelta(minutes=1), at_risk_at=NOW - HOUR),  # was at risk, now missed
        Row(4, NOW - timedelta(minutes=1)),  # first seen late: missed only
        Row(5, NOW - HOUR, at_risk_at=NOW - 2 * HOUR, missed_at=NOW - HOUR),  # all said
        Row(6, NOW + 3 * HOUR),  # not yet
    ]
    report = plan_reports(rows, NOW, HOUR, UTC)
    assert report.new_at_risk == [1]
    assert report.known_missed == [3]
    assert report.new_missed == [4]
    assert [d["delivery_id"] for d in report.at_risk] == [1]
    assert [d["delivery_id"] for d in report.missed] == [3, 4]
    assert report.at_risk[0]["reason"] == "held: maintenance"


def test_event_detail_caps_documents_and_counts_reasons() -> None:
    class Flow:
        name, source, target = "trading-treasury", "trading", "treasury"

    items = [{"reason": "held: maintenance" if i % 2 else "queued"} for i in range(45)]
    detail = event_detail(Flow(), items, HOUR)
    assert detail["total"] == 45 and len(detail["documents"]) == 20
    assert detail["reasons"] == {"queued": 23, "held: maintenance": 22}
    assert (detail["flow"], detail["from"], detail["to"]) == (
        "trading-treasury",
        "trading",
        "treasury",
    )
