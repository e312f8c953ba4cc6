"""Window arithmetic: overlap, notice, declared peaks, the observed-traffic histogram, the
quietest slot, expected backlog and the iCalendar feed. Fixed datetimes, no clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from interlink.features.maintenance import windows as wa
from interlink.features.maintenance.windows import Window

SH = ZoneInfo("Asia/Shanghai")


def sh(day: int, hour: int, minute: int = 0) -> datetime:
    """January 2026 in Shanghai: the 5th is a Monday."""
    return datetime(2026, 1, day, hour, minute, tzinfo=SH)


NOW = sh(5, 10)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((sh(5, 12), sh(5, 13)), (sh(5, 12, 30), sh(5, 14)), True),
        ((sh(5, 12), sh(5, 13)), (sh(5, 13), sh(5, 14)), False),  # touching is not overlapping
        ((sh(5, 12), sh(5, 13)), (sh(5, 11), sh(5, 12)), False),
        ((sh(5, 12), sh(5, 18)), (sh(5, 13), sh(5, 14)), True),  # one inside the other
        ((sh(5, 12), sh(5, 13)), (sh(6, 12), sh(6, 13)), False),
    ],
)
def test_overlaps(a: tuple, b: tuple, expected: bool) -> None:
    assert wa.overlaps(*a, *b) is expected
    assert wa.overlaps(*b, *a) is expected


@pytest.mark.parametrize(
    ("start", "end", "problem"),
    [
        (sh(5, 12), sh(5, 11), "the end must be after the start"),
        (sh(5, 12), sh(5, 12), "the end must be after the start"),
        (sh(4, 12), sh(4, 13), "the window is in the past"),
        (sh(5, 9), sh(5, 11), "the window has already started; its start must not be in the past"),
        (sh(5, 10), sh(5, 11), None),
        (sh(6, 1), sh(6, 3), None),
    ],
)
def test_impossible(start: datetime, end: datetime, problem: str | None) -> None:
    assert wa.impossible(start, end, NOW) == problem


@pytest.mark.parametrize(
    ("start", "notice", "missing"),
    [
        (sh(6, 10), timedelta(hours=24), None),  # exactly 24h ahead is enough
        (sh(6, 9), timedelta(hours=24), timedelta(hours=1)),
        (sh(5, 11), timedelta(hours=24), timedelta(hours=23)),
        (sh(5, 11), None, None),  # no notice asked for
        (sh(5, 10, 30), timedelta(0), None),
    ],
)
def test_short_of_notice(start: datetime, notice: timedelta | None, missing: object) -> None:
    assert wa.short_of_notice(start, NOW, notice) == missing


PEAKS = ["Mon-Fri 09:00-11:30", "Mon-Fri 14:00-17:30"]


@pytest.mark.parametrize(
    ("start", "end", "entries", "count"),
    [
        (sh(5, 12), sh(5, 13), PEAKS, 0),  # lunch on a Monday
        (sh(5, 11), sh(5, 12), PEAKS, 1),  # the end of the morning peak
        (sh(5, 11, 30), sh(5, 14), PEAKS, 0),  # exactly between the peaks
        (sh(5, 11), sh(5, 15), PEAKS, 2),
        (sh(10, 9), sh(10, 18), PEAKS, 0),  # Saturday
        (sh(9, 22), sh(13, 8), PEAKS, 2),  # Friday night to Tuesday: Monday's two peaks
        (sh(11, 23), sh(12, 1), ["Sun 22:00-24:00"], 1),  # 24:00 is the end of the day
        (sh(12, 0), sh(12, 1), ["Sun 22:00-24:00"], 0),
    ],
)
def test_peak_intervals(start: datetime, end: datetime, entries: list[str], count: int) -> None:
    found = wa.peak_intervals(entries, SH, start, end)
    assert len(found) == count
    for _, p_start, p_end in found:
        assert wa.overlaps(start, end, p_start, p_end)
        assert p_start.tzinfo is UTC


def test_peak_interval_is_in_utc_and_names_its_entry() -> None:
    [(entry, p_start, p_end)] = wa.peak_intervals(PEAKS, SH, sh(5, 11), sh(5, 12))
    assert entry == "Mon-Fri 09:00-11:30"
    assert (p_start, p_end) == (sh(5, 9), sh(5, 11, 30))


@pytest.mark.parametrize(
    ("when", "hour"),
    [
        (sh(5, 0), 0),  # Monday 00:00 local
        (sh(5, 10, 59), 10),
        (sh(11, 23, 30), 167),  # Sunday 23:30
        (datetime(2026, 1, 4, 16, 0, tzinfo=UTC), 0),  # Sunday 16:00 UTC is Monday 00:00 SH
    ],
)
def test_hour_of_week(when: datetime, hour: int) -> None:
    assert wa.hour_of_week(when, SH) == hour


def test_histogram_buckets_local_hours_over_weeks() -> None:
    counts = [
        (datetime(2026, 1, 5, 2, tzinfo=UTC), 10),  # Mon 10:00 SH
        (datetime(2025, 12, 29, 2, tzinfo=UTC), 5),  # the Monday before, same hour
        (datetime(2026, 1, 4, 16, tzinfo=UTC), 3),  # Mon 00:00 SH
    ]
    hist = wa.histogram(counts, SH)
    assert len(hist) == 168
    assert hist[10] == 15 and hist[0] == 3 and sum(hist) == 18


@pytest.mark.parametrize(
    ("counts", "busy"),
    [
        ({}, set()),
        ({10: 5}, set()),  # one hour of traffic is not "above" anything
        ({h: 10 for h in range(20)}, set()),  # flat traffic has no busiest hours
        ({**{h: 10 for h in range(20)}, 30: 100, 31: 90}, {30, 31}),
        ({h: h + 1 for h in range(10)}, {8, 9}),  # counts 9, 10: above the 80th percentile, 8
    ],
)
def test_busiest_hours(counts: dict[int, int], busy: set[int]) -> None:
    hist = [counts.get(h, 0) for h in range(168)]
    assert wa.busiest_hours(hist) == busy


def test_hours_covered_weights_partial_hours() -> None:
    covered = wa.hours_covered(sh(5, 10, 30), sh(5, 12, 15), SH)
    assert covered == [(10, 0.5), (11, 1.0), (12, 0.25)]


def test_expected_traffic_averages_over_weeks() -> None:
    hist = [0] * 168
    hist[10] = 400  # four Mondays, 100 an hour each
    hist[11] = 40
    assert wa.expected_traffic(hist, sh(5, 10, 30), sh(5, 12), SH) == pytest.approx(60.0)
    assert wa.expected_traffic(hist, sh(5, 10), sh(5, 11), SH, weeks=1) == 400


def test_busy_overlap_names_the_busy_hours_touched() -> None:
    hist = [1] * 168
    hist[10] = hist[11] = 50
    assert wa.busy_overlap(hist, sh(5, 9), sh(5, 12), SH) == [10, 11]
    assert wa.busy_overlap(hist, sh(5, 12), sh(5, 13), SH) == []
    assert wa.describe_hour(10) == "Mon 10:00-11:00"


def test_quietest_slot_avoids_traffic_and_peaks() -> None:
    hist = [100] * 168
    for h in (24 * 2 + 3, 24 * 2 + 4):  # Wednesday 03:00-05:00 is quiet
        hist[h] = 1
    start, end, expected = wa.quietest_slot(hist, sh(5, 10), sh(5, 12), SH, PEAKS) or (
        None,
        None,
        None,
    )
    assert (start, end) == (sh(7, 3), sh(7, 5))
    assert expected == pytest.approx(0.5)


def test_quietest_slot_keeps_minutes_respects_earliest_and_week() -> None:
    hist = [0] * 168  # no traffic: the nearest slot outside the peaks wins
    found = wa.quietest_slot(hist, sh(5, 10, 15), sh(5, 11, 15), SH, PEAKS, earliest=sh(5, 10))
    assert found is not None
    # 10:15 and 11:15 run into the morning peak, 08:15 is before the earliest allowed start.
    assert found[0] == sh(5, 12, 15)
    # A slot as long as the whole week fits only where the week allows it.
    assert wa.quietest_slot(hist, sh(5, 0), sh(12, 0), SH) == (
        sh(5, 0).astimezone(UTC),
        sh(12, 0).astimezone(UTC),
        0.0,
    )
    assert wa.quietest_slot(hist, sh(5, 0), sh(12, 0), SH, earliest=sh(5, 1)) is None


def test_window_state() -> None:
    w = Window(1, "treasury", sh(5, 12), sh(5, 13), "release")
    assert [w.state(t) for t in (sh(5, 11), sh(5, 12), sh(5, 13))] == [
        "scheduled",
        "active",
        "ended",
    ]
    assert w.active(sh(5, 12, 30)) and not w.active(sh(5, 13))
    cancelled = Window(2, "treasury", sh(5, 12), sh(5, 13), "x", cancelled_at=sh(5, 11))
    assert cancelled.state(sh(5, 12, 30)) == "cancelled" and not cancelled.active(sh(5, 12, 30))


@pytest.mark.parametrize("text", ["a" * 200, "中" * 60 + "x" * 7, "x" * 75, "x" * 76])
def test_fold_at_75_octets(text: str) -> None:
    folded = wa.fold("DESCRIPTION:" + text)
    parts = folded.split("\r\n")
    assert all(len(p.encode()) <= 75 for p in parts)
    assert all(p.startswith(" ") for p in parts[1:])
    assert "".join([parts[0], *(p[1:] for p in parts[1:])]) == "DESCRIPTION:" + text


def test_ical_feed() -> None:
    windows = [
        Window(1, "treasury", sh(6, 1), sh(6, 3), "release 4.2; db, upgrade", created_at=NOW),
        Window(2, "finance", sh(7, 1), sh(7, 2), "x", short_notice=True, cancelled_at=sh(5, 11)),
    ]
    text = wa.ical(windows, NOW, "hub.example", {"treasury": ["trading-treasury"]}, SH)
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    lines = text.replace("\r\n ", "").split("\r\n")[:-1]
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-1] == "END:VCALENDAR"
    assert lines.count("BEGIN:VEVENT") == 2 == lines.count("END:VEVENT")
    assert "UID:maintenance-1@hub.example" in lines
    assert "DTSTART:20260105T170000Z" in lines and "DTEND:20260105T190000Z" in lines
    assert "DTSTAMP:20260105T020000Z" in lines
    assert "SUMMARY:treasury maintenance" in lines
    assert "SUMMARY:finance maintenance (short notice)" in lines
    assert "STATUS:CANCELLED" in lines and "STATUS:CONFIRMED" in lines
    [description] = [line for line in lines if line.startswith("DESCRIPTION:Reason: release")]
    assert "release 4.2\\; db\\, upgrade\\nAffected flows: trading-treasury" in description
