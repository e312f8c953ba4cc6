"""When a batch file is cut and when its result is due: pure arithmetic over local times."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from interlink.clock import latest_scheduled
from interlink.config import parse_clock_time, parse_duration


def latest_cut(now: datetime, schedule: list[str], tz: ZoneInfo) -> datetime | None:
    """The most recent scheduled cut (a time of day in ``tz``) at or before ``now``."""
    return latest_scheduled(now, [parse_clock_time(entry) for entry in schedule], tz)


def result_due(sent_at: datetime, deadline: str, tz: ZoneInfo) -> datetime:
    """When the result of a file sent at ``sent_at`` is due: a duration after it, or the next
    given time of day after it (sent at 22:00, due ``10:00`` is the next morning)."""
    try:
        at: time = parse_clock_time(deadline)
    except ValueError:
        return sent_at + parse_duration(deadline)
    local = sent_at.astimezone(tz)
    due = datetime.combine(local.date(), at, tz)
    if due <= local:
        due = datetime.combine(local.date() + timedelta(days=1), at, tz)
    return due
