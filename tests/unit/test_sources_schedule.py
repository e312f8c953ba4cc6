"""When a scheduled source polls: at each of its times of day in its zone, once; a time
missed while the service was down is caught up at start (docs/sources.md, "Schedule")."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from interlink.clock import latest_scheduled, next_scheduled
from interlink.features.sources.service import due_slot

SHANGHAI = ZoneInfo("Asia/Shanghai")
TIMES = [time(22, 0), time(2, 0)]


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=SHANGHAI)


def test_the_latest_and_the_next_time_of_day_cross_midnight() -> None:
    assert latest_scheduled(at(5, 1), TIMES, SHANGHAI) == at(4, 22)
    assert latest_scheduled(at(5, 2), TIMES, SHANGHAI) == at(5, 2)  # at the time itself
    assert latest_scheduled(at(5, 23), TIMES, SHANGHAI) == at(5, 22)
    assert next_scheduled(at(5, 1), TIMES, SHANGHAI) == at(5, 2)
    assert next_scheduled(at(5, 2), TIMES, SHANGHAI) == at(5, 22)  # after, not at
    assert next_scheduled(at(5, 23), TIMES, SHANGHAI) == at(6, 2)
    # Given in UTC, read in the zone: 18:30 UTC is 02:30 in Shanghai the next day.
    utc = datetime(2026, 1, 4, 18, 30, tzinfo=UTC)
    assert latest_scheduled(utc, TIMES, SHANGHAI) == at(5, 2)
    assert latest_scheduled(at(5, 1), [], SHANGHAI) is None
    assert next_scheduled(at(5, 1), [], SHANGHAI) is None


def test_a_time_is_due_once_and_a_missed_one_at_once() -> None:
    # Polled for 22:00 last night: nothing is due until 02:00, then 02:00 is.
    handled = at(4, 22)
    assert due_slot(at(5, 1, 59), TIMES, SHANGHAI, handled) is None
    assert due_slot(at(5, 2, 0), TIMES, SHANGHAI, handled) == at(5, 2)
    # Once done with, it is not due again.
    assert due_slot(at(5, 2, 30), TIMES, SHANGHAI, at(5, 2)) is None
    # Down from 21:00 to 03:00: the service polls for 02:00 as soon as it is back (not for
    # 22:00 as well: one poll takes everything waiting).
    assert due_slot(at(5, 3), TIMES, SHANGHAI, at(4, 21)) == at(5, 2)
