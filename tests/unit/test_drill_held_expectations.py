"""Held expectations of a drill over plain records (issue 14): a delivery held for the reason
the drill expects has ended as meant; held for another reason, or of another revision, not."""

from __future__ import annotations

from interlink.features.drills.expectations import (
    FAILED,
    PASSED,
    coverage,
    delivered_within,
    held_as_expected,
    held_as_expected_checks,
    nothing_lost,
)
from tests.unit.test_drill_expectations import booked, delivery, drill

PAY = delivery("PO-3", "dead", "rejected", revision=1)
REFUND = delivery("PO-3", "held", "blocked", revision=2, scenario="refund")
OTHER = delivery("PO-4")


def test_held_for_the_expected_reason_counts_as_ended() -> None:
    wanted = drill(held=[{"key": "PO-3", "reason": "blocked", "revision": 2}])
    assert held_as_expected(wanted, REFUND)
    assert not held_as_expected(wanted, PAY)  # another revision
    paused = drill(held=[{"key": "PO-3", "reason": "paused"}])
    assert not held_as_expected(paused, REFUND)  # another reason
    elsewhere = drill(held=[{"key": "PO-3", "reason": "blocked", "flow": "trading-finance"}])
    assert not held_as_expected(elsewhere, REFUND)  # another flow


def test_nothing_lost_and_delivered_within_leave_expected_holds_out() -> None:
    rows = [PAY, REFUND, OTHER]
    received = [booked("PO-4", 1)]
    wanted = drill(
        dead=[{"key": "PO-3", "reason": "rejected", "revision": 1}],
        held=[{"key": "PO-3", "reason": "blocked", "revision": 2}],
    )
    lost = nothing_lost(rows, received, settled=True, drill=wanted)
    assert lost.status == PASSED
    assert lost.evidence == "2 of 3 deliveries ended delivered or dead, 1 held as expected"
    assert nothing_lost(rows, received, settled=True).status == FAILED
    assert delivered_within(wanted, rows, 5.0).status == PASSED
    matrix = coverage(
        {"payment_order": ["payment", "refund"]},
        {"trading-treasury": "payment_order"},
        wanted,
        rows,
    )
    assert matrix["refund"]["trading-treasury"] == "passed"


def test_the_check_names_the_revision_and_says_what_happened() -> None:
    wanted = drill(held=[{"key": "PO-3", "reason": "paused", "revision": 2}])
    [check] = held_as_expected_checks(wanted, [PAY, REFUND])
    assert (check.name, check.status) == ("PO-3 r2 held (paused)", FAILED)
    assert "held (blocked)" in check.evidence
    [missing] = held_as_expected_checks(drill(held=[{"key": "PO-9", "reason": "auth"}]), [PAY])
    assert missing.status == FAILED and missing.evidence == "no delivery of key PO-9 was made"
