"""A refused maintenance window comes with the quietest slot that would be announced, as a
command line (issue 14). Pure: the slot arithmetic and the words, no store or clock."""

from __future__ import annotations

import shlex
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import interlink.cli  # noqa: F401  (the CLI first: it registers the feature command groups)
from interlink.features.maintenance import windows as wa
from interlink.features.maintenance.cli import refusals_of, suggestion

SH = ZoneInfo("Asia/Shanghai")
PEAKS = ["Mon-Fri 09:00-11:30", "Mon-Fri 14:00-17:30"]


def sh(day: int, hour: int, minute: int = 0) -> datetime:
    """January 2026 in Shanghai: the 5th is a Monday."""
    return datetime(2026, 1, day, hour, minute, tzinfo=SH)


def test_the_quietest_slot_steps_around_other_windows() -> None:
    quiet = [0] * 168
    alone = wa.quietest_slot(quiet, sh(5, 12), sh(5, 14), SH, PEAKS, earliest=sh(5, 12))
    assert alone is not None and alone[0] == sh(5, 12).astimezone(UTC)
    taken = [(sh(5, 12), sh(5, 13))]
    found = wa.quietest_slot(quiet, sh(5, 12), sh(5, 14), SH, PEAKS, sh(5, 12), taken)
    # 12:00 and 13:00 hit the other window or the afternoon peak; 17:30 is not on the grid.
    assert found is not None and found[0] == sh(5, 18).astimezone(UTC)


def test_a_refusal_late_in_the_week_finds_a_slot_in_the_next() -> None:
    quiet = [0] * 168
    late = (sh(11, 20), sh(11, 23))  # Sunday evening; nothing allowed before Monday 08:00
    assert wa.quietest_slot(quiet, *late, SH, PEAKS, earliest=sh(12, 8)) is None
    found = wa.quietest_slot(quiet, *late, SH, PEAKS, earliest=sh(12, 8), weeks=2)
    # Monday 08:00-11:00 and 12:00-15:00 touch the peaks; 18:00 is the nearest after them.
    assert found is not None and found[0] == sh(12, 18).astimezone(UTC)


def test_only_what_force_lifts_stops_being_a_refusal_with_force() -> None:
    checks = {"errors": ["overlaps window 3"], "needs_force": ["short notice"]}
    assert refusals_of(checks, force=False) == ["overlaps window 3", "short notice"]
    assert refusals_of(checks, force=True) == ["overlaps window 3"]


def test_the_suggestion_is_a_command_line_to_run_as_it_is() -> None:
    checks = {
        "system": "treasury",
        "quietest_slot": {
            "start_local": "2026-01-06T02:00:00+08:00",
            "end_local": "2026-01-06T04:00:00+08:00",
            "expected_deliveries": 3.4,
        },
    }
    words, command = suggestion(checks, "release 4.2 (Li's)", Path("ops/hub.yaml"), "Asia/Shanghai")
    assert words == (
        "the quietest allowed slot is 2026-01-06 02:00 to 2026-01-06 04:00 Asia/Shanghai "
        "(about 3 deliveries expected); to announce it:"
    )
    assert shlex.split(command) == [
        "interlink", "maintenance", "add", "treasury",
        "--start", "2026-01-06T02:00+08:00", "--end", "2026-01-06T04:00+08:00",
        "--reason", "release 4.2 (Li's)", "-c", "ops/hub.yaml",
    ]  # fmt: skip


def test_without_an_allowed_slot_it_says_so() -> None:
    [line] = suggestion({"system": "treasury", "quietest_slot": None}, "x", None, "UTC")
    assert line.startswith("no slot of this length is allowed")
