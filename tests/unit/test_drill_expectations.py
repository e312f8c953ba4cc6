"""Expectations and coverage of a rehearsal, over plain records; and the report's rendering."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest

from interlink.features.drills import report as render
from interlink.features.drills.expectations import (
    FAILED,
    PASSED,
    FlowPath,
    coverage,
    dead_as_expected,
    delivered_within,
    duplicates,
    evaluate,
    nothing_lost,
    order_kept,
)
from interlink.features.drills.sandbox import Received
from interlink.features.drills.spec import Drill

FLOW = FlowPath("trading-treasury", "treasury", "/payments")


def drill(**expect: Any) -> Drill:
    return Drill.model_validate(
        {
            "name": "t",
            "flows": ["trading-treasury"],
            "documents": [{"scenario": "payment", "payload": {}}],
            "expect": expect,
        }
    )


def delivery(
    key: str = "PO-1",
    status: str = "delivered",
    reason: str | None = None,
    latency: float | None = 1.0,
    revision: int = 1,
    scenario: str | None = "payment",
    doc: str | None = None,
) -> dict[str, Any]:
    return {
        "id": 1,
        "document_id": doc or f"{key}-{revision}",
        "flow": "trading-treasury",
        "system": "treasury",
        "key": key,
        "revision": revision,
        "status": status,
        "reason": reason,
        "latency": latency if status == "delivered" else None,
        "scenario": scenario,
        "last_error": "HTTP 422: no" if status == "dead" else None,
        "attempts": 1,
    }


def booked(key: str, revision: int, doc: str | None = None, at: float = 0.0) -> Received:
    return Received(
        at=at,
        system="treasury",
        path="/payments",
        document_id=doc or f"{key}-{revision}",
        key=key,
        revision=revision,
        type="payment_order",
        payload={},
        fault="up",
        status=200,
        booked=True,
    )


def test_nothing_lost_needs_every_delivery_ended_and_booked() -> None:
    ok = nothing_lost([delivery()], [booked("PO-1", 1)], settled=True)
    assert ok.status == PASSED
    held = nothing_lost([delivery(status="held")], [], settled=False)
    assert held.status == FAILED and "time limit" in held.evidence
    unbooked = nothing_lost([delivery()], [], settled=True)
    assert unbooked.status == FAILED and "not in the sandbox's books" in unbooked.evidence
    assert nothing_lost([], [], settled=True).status == FAILED


@pytest.mark.parametrize(
    ("deliveries", "limit", "status"),
    [
        ([delivery(latency=2.0)], 5.0, PASSED),
        ([delivery(latency=6.0)], 5.0, FAILED),
        ([delivery(status="dead", reason="rejected")], 5.0, FAILED),
        ([], 5.0, FAILED),
    ],
)
def test_delivered_within(deliveries: list[dict[str, Any]], limit: float, status: str) -> None:
    assert delivered_within(drill(), deliveries, limit).status == status


def test_expected_dead_ones_do_not_count_against_delivery() -> None:
    d = drill(dead=[{"key": "PO-2", "reason": "rejected"}])
    found = [delivery(), delivery("PO-2", status="dead", reason="rejected")]
    assert delivered_within(d, found, 5.0).status == PASSED
    [check] = dead_as_expected(d, found)
    assert check.status == PASSED
    [wrong] = dead_as_expected(drill(dead=[{"key": "PO-2", "reason": "gave_up"}]), found)
    assert wrong.status == FAILED and "rejected" in wrong.evidence


def test_duplicates_count_repeated_bookings() -> None:
    received = [booked("PO-1", 1), booked("PO-1", 1), booked("PO-2", 1)]
    assert duplicates(received, 0).status == FAILED
    assert duplicates(received, 1).status == PASSED


@pytest.mark.parametrize(
    ("revisions", "status"),
    [
        ([1, 2, 3], PASSED),
        ([1, 3, 2], FAILED),
        ([1], FAILED),  # nothing shows the order
    ],
)
def test_order_kept(revisions: list[int], status: str) -> None:
    received = [booked("PO-1", r, at=i) for i, r in enumerate(revisions)]
    assert order_kept([FLOW], received).status == status


def test_a_duplicate_of_an_earlier_revision_is_not_disorder() -> None:
    received = [booked("PO-1", 1), booked("PO-1", 2), booked("PO-1", 1)]
    assert order_kept([FLOW], received).status == PASSED


def test_alerts_and_evaluate_name_what_failed() -> None:
    d = drill(alerts=["circuit_opened"], max_duplicates=0, delivered_within="5s")
    events = [{"t": 1.0, "kind": "circuit_closed", "system": "treasury", "flow": None}]
    checks = evaluate(
        d,
        deliveries=[delivery()],
        received=[booked("PO-1", 1)],
        events=events,
        flows=[FLOW],
        settled=True,
    )
    by_name = {c.name: c for c in checks}
    assert by_name["alert circuit_opened fired"].status == FAILED
    assert "circuit_closed" in by_name["alert circuit_opened fired"].evidence
    assert by_name["no duplicates"].status == PASSED
    assert by_name["nothing lost"].status == PASSED


def test_coverage_marks_passed_exercised_and_never_tried() -> None:
    catalogue = {"payment_order": ["payment", "refund", "reversal"]}
    flows = {"trading-treasury": "payment_order", "trading-member": "customer"}
    found = [
        delivery(),
        delivery("PO-2", scenario="refund", status="dead", reason="rejected"),
    ]
    matrix = coverage(catalogue, flows, drill(), found)
    assert matrix["payment"]["trading-treasury"] == "passed"
    assert matrix["refund"]["trading-treasury"] == "exercised"
    assert matrix["reversal"]["trading-treasury"] == "never tried"
    assert matrix["payment"]["trading-member"] == ""


def sample_report(passed: bool = False) -> dict[str, Any]:
    return {
        "drill": "t <&>",
        "description": "a drill",
        "file": "d.yaml",
        "topology": "interlink.yaml",
        "started": "2026-01-01T00:00:00+00:00",
        "finished": "2026-01-01T00:00:03+00:00",
        "duration": 3.0,
        "settled": True,
        "passed": passed,
        "flows": ["trading-treasury"],
        "outages": ["treasury"],
        "documents": {"planned": 2, "submitted": 2, "accepted": 2, "refused": []},
        "deliveries": {"delivered": 2},
        "expectations": [
            {"name": "nothing lost", "status": "passed", "evidence": "2 of 2", "details": []},
            {
                "name": "order kept per key",
                "status": "failed",
                "evidence": "1 out",
                "details": ["out of order: x"],
            },
            {"name": "window", "status": "not available", "evidence": "n/a", "details": []},
        ],
        "timeline": {
            "bucket": 0.1,
            "end": 3.0,
            "outcomes": ["delivered", "unavailable"],
            "buckets": {"0": {"delivered": 2}, "12": {"unavailable": 1, "delivered": 1}},
            "faults": [{"system": "treasury", "fault": "down", "start": 1.0, "end": 2.0}],
        },
        "events": [
            {
                "t": 1.0,
                "kind": "circuit_opened",
                "title": "downstream down",
                "system": "treasury",
                "flow": None,
                "detail": {},
                "recipients": [
                    {"system": "treasury", "role": "ops", "name": None, "email": "ops@example.com"}
                ],
            },
        ],
        "alerts_capability": True,
        "coverage": {
            "flows": ["trading-treasury"],
            "scenarios": {
                "payment": {"trading-treasury": "passed"},
                "refund": {"trading-treasury": "never tried"},
            },
        },
    }


def test_the_svg_timeline_is_well_formed_with_bars_and_fault_lanes() -> None:
    svg = render.svg_timeline(sample_report())
    root = ET.fromstring(svg)
    titles = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}title")]
    assert "0.0s: 2 delivered" in titles
    assert "1.2s: 1 unavailable" in titles
    assert any(t.startswith("treasury: down 1s-2s") for t in titles)


def test_markdown_and_html_show_each_expectation_and_escape() -> None:
    report = sample_report()
    md = render.markdown(report)
    assert "# Drill: t <&> — FAILED" in md
    assert "| **FAIL** | order kept per key | 1 out<br>out of order: x |" in md
    assert "| **N/A** | window |" in md
    assert "never tried" in md and "ops@example.com" in md
    page = render.html(report)
    assert "t &lt;&amp;&gt;" in page and "<svg" in page
    assert 'class="failed">FAIL' in page
