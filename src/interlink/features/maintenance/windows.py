"""Window arithmetic: overlap, notice, declared peak hours, the observed-traffic histogram, the
quietest comparable slot, expected backlog, and the iCalendar feed.

Pure functions over plain data (aware datetimes, a time zone, lists of counts); no store, no
clock. Times are aware; the topology's time zone says what "Monday 09:00" means.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from interlink.config import parse_peak_hours

HOURS_PER_WEEK = 168
HOUR = timedelta(hours=1)
BUSY_PERCENTILE = 0.8


@dataclass(frozen=True)
class Window:
    """A maintenance window as stored (times aware, UTC)."""

    id: int
    system: str
    start: datetime
    end: datetime
    reason: str
    short_notice: bool = False
    created_at: datetime | None = None
    created_by: str = ""
    cancelled_at: datetime | None = None
    reminded_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    drained_at: datetime | None = None
    held_count: int | None = None

    @property
    def cancelled(self) -> bool:
        return self.cancelled_at is not None

    def active(self, now: datetime) -> bool:
        return not self.cancelled and self.start <= now < self.end

    def state(self, now: datetime) -> str:
        if self.cancelled:
            return "cancelled"
        if now < self.start:
            return "scheduled"
        return "active" if now < self.end else "ended"


# -- intervals --------------------------------------------------------------------------------


def overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    """Half-open intervals [a_start, a_end) and [b_start, b_end) share a moment."""
    return a_start < b_end and b_start < a_end


def impossible(start: datetime, end: datetime, now: datetime) -> str | None:
    """Why a window from ``start`` to ``end`` cannot be announced at ``now``, or None."""
    if end <= start:
        return "the end must be after the start"
    if end <= now:
        return "the window is in the past"
    if start < now:
        return "the window has already started; its start must not be in the past"
    return None


def short_of_notice(start: datetime, now: datetime, notice: timedelta | None) -> timedelta | None:
    """How much notice is missing (positive), or None when the announcement is in time."""
    if notice is None:
        return None
    given = start - now
    return notice - given if given < notice else None


# -- declared peak hours ----------------------------------------------------------------------


def _local_day_start(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time(0), tz)


def peak_intervals(
    entries: Sequence[str], tz: tzinfo, start: datetime, end: datetime
) -> list[tuple[str, datetime, datetime]]:
    """Every concrete occurrence of the declared peak hours that overlaps [start, end):
    (entry, occurrence start, occurrence end), in UTC, ordered by start."""
    found: list[tuple[str, datetime, datetime]] = []
    first = start.astimezone(tz).date() - timedelta(days=1)
    last = end.astimezone(tz).date() + timedelta(days=1)
    for entry in entries:
        days, t_start, t_end = parse_peak_hours(entry)
        day = first
        while day <= last:
            if day.weekday() in days:
                p_start = datetime.combine(day, t_start, tz)
                p_end = (
                    _local_day_start(day + timedelta(days=1), tz)
                    if t_end == time.max
                    else datetime.combine(day, t_end, tz)
                )
                if overlaps(start, end, p_start, p_end):
                    found.append((entry, p_start.astimezone(UTC), p_end.astimezone(UTC)))
            day += timedelta(days=1)
    return sorted(found, key=lambda f: f[1])


# -- observed traffic -------------------------------------------------------------------------


def hour_of_week(when: datetime, tz: tzinfo) -> int:
    """0 = Monday 00:00-01:00 local, 167 = Sunday 23:00-24:00."""
    local = when.astimezone(tz)
    return local.weekday() * 24 + local.hour


def histogram(counts: Iterable[tuple[datetime, int]], tz: tzinfo) -> list[int]:
    """Hour-of-week histogram (168 buckets, topology time) from (time, count) pairs, e.g.
    deliveries counted per UTC hour."""
    hist = [0] * HOURS_PER_WEEK
    for when, count in counts:
        hist[hour_of_week(when, tz)] += count
    return hist


def busiest_hours(hist: Sequence[int], percentile: float = BUSY_PERCENTILE) -> set[int]:
    """Hours of the week whose traffic is above ``percentile`` of the hours that had any."""
    nonzero = sorted(c for c in hist if c > 0)
    if not nonzero:
        return set()
    threshold = nonzero[max(0, math.ceil(percentile * len(nonzero)) - 1)]
    return {h for h, c in enumerate(hist) if c > threshold}


def hours_covered(start: datetime, end: datetime, tz: tzinfo) -> list[tuple[int, float]]:
    """(hour of week, fraction of that hour inside [start, end)) for each hour touched."""
    result: list[tuple[int, float]] = []
    cursor = start.astimezone(UTC)
    end = end.astimezone(UTC)
    while cursor < end:
        # Hours begin on the UTC hour; a zone with a half-hour offset is approximated.
        hour_end = cursor.replace(minute=0, second=0, microsecond=0) + HOUR
        stop = min(hour_end, end)
        result.append((hour_of_week(cursor, tz), (stop - cursor) / HOUR))
        cursor = stop
    return result


def expected_traffic(
    hist: Sequence[int], start: datetime, end: datetime, tz: tzinfo, weeks: float = 4.0
) -> float:
    """Deliveries expected in [start, end): the average per hour observed over the window's
    hours of the week (``hist`` spans ``weeks`` weeks), times the part of each hour covered."""
    return sum(hist[h] / weeks * part for h, part in hours_covered(start, end, tz))


def busy_overlap(hist: Sequence[int], start: datetime, end: datetime, tz: tzinfo) -> list[int]:
    """The busiest observed hours of the week that the window touches, in order."""
    busy = busiest_hours(hist)
    seen: list[int] = []
    for h, _ in hours_covered(start, end, tz):
        if h in busy and h not in seen:
            seen.append(h)
    return seen


def week_start(when: datetime, tz: tzinfo) -> datetime:
    """Monday 00:00 local of the week holding ``when``."""
    local = when.astimezone(tz)
    return _local_day_start(local.date() - timedelta(days=local.weekday()), tz)


def quietest_slot(
    hist: Sequence[int],
    start: datetime,
    end: datetime,
    tz: tzinfo,
    peaks: Sequence[str] = (),
    earliest: datetime | None = None,
    avoid: Sequence[tuple[datetime, datetime]] = (),
    weeks: int = 1,
) -> tuple[datetime, datetime, float] | None:
    """The slot of the same duration in the same (local) week, outside the declared peaks and
    the ``avoid`` intervals (other windows), not before ``earliest``, with the least observed
    traffic; ties go to the slot nearest the requested start. Candidates start on the hour
    plus the requested start's minutes. ``weeks`` widens the search to the following weeks.
    Returns (start, end, expected deliveries) in UTC, or None when no slot fits."""
    duration = end - start
    monday = week_start(start, tz)
    next_monday = _local_day_start((monday + timedelta(days=7 * weeks, hours=12)).date(), tz)
    offset = timedelta(minutes=start.astimezone(tz).minute)
    best: tuple[float, float, datetime] | None = None
    for k in range(HOURS_PER_WEEK * weeks):
        cand = (monday + timedelta(hours=k) + offset).astimezone(UTC)
        cand_end = cand + duration
        if cand_end > next_monday:
            break
        if earliest is not None and cand < earliest:
            continue
        if peaks and peak_intervals(peaks, tz, cand, cand_end):
            continue
        if any(overlaps(cand, cand_end, a, b) for a, b in avoid):
            continue
        traffic = expected_traffic(hist, cand, cand_end, tz)
        key = (round(traffic, 6), abs((cand - start).total_seconds()), cand)
        if best is None or key < best:
            best = key
    if best is None:
        return None
    return best[2], best[2] + duration, best[0]


def describe_hour(h: int) -> str:
    days = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    return f"{days[h // 24]} {h % 24:02d}:00-{h % 24 + 1:02d}:00"


# -- iCalendar (RFC 5545) ---------------------------------------------------------------------


def _ics_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _ics_text(value: str) -> str:
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
    )


def fold(line: str) -> str:
    """Fold a content line at 75 octets (RFC 5545 3.1): CRLF and one space before each
    continuation; never splits a UTF-8 character."""
    out: list[str] = []
    current = ""
    size = 0
    limit = 75
    for char in line:
        n = len(char.encode())
        if size + n > limit:
            out.append(current)
            current, size, limit = " ", 1, 75
        current += char
        size += n
    out.append(current)
    return "\r\n".join(out)


def ical(
    windows: Sequence[Window],
    now: datetime,
    host: str,
    flows_of: dict[str, list[str]],
    tz: tzinfo,
    entries: Sequence[Mapping[str, Any]] = (),
) -> str:
    """An iCalendar feed of ``windows``; ``flows_of`` maps a system to the flows into it.
    ``entries`` are other features' calendar entries (``uid``, ``start``, ``end``,
    ``summary``, ``description`` and ``created_at``, times in ISO 8601), such as changes."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Interlink//Maintenance windows//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "X-WR-CALNAME:Interlink maintenance windows",
    ]
    for w in windows:
        summary = f"{w.system} maintenance" + (" (short notice)" if w.short_notice else "")
        affected = ", ".join(flows_of.get(w.system, [])) or "none"
        start_local = w.start.astimezone(tz).strftime("%Y-%m-%d %H:%M")
        end_local = w.end.astimezone(tz).strftime("%Y-%m-%d %H:%M")
        description = (
            f"Reason: {w.reason}\nAffected flows: {affected}\n"
            f"Local time: {start_local} - {end_local}"
        )
        stamp = w.cancelled_at or w.created_at or now
        lines += [
            "BEGIN:VEVENT",
            f"UID:maintenance-{w.id}@{host}",
            f"DTSTAMP:{_ics_time(stamp)}",
            f"DTSTART:{_ics_time(w.start)}",
            f"DTEND:{_ics_time(w.end)}",
            f"SUMMARY:{_ics_text(summary)}",
            f"DESCRIPTION:{_ics_text(description)}",
            f"STATUS:{'CANCELLED' if w.cancelled else 'CONFIRMED'}",
            f"SEQUENCE:{1 if w.cancelled else 0}",
            "END:VEVENT",
        ]
    for e in entries:
        start, end = datetime.fromisoformat(e["start"]), datetime.fromisoformat(e["end"])
        stamp = datetime.fromisoformat(e["created_at"]) if e.get("created_at") else now
        lines += [
            "BEGIN:VEVENT",
            f"UID:{e['uid']}@{host}",
            f"DTSTAMP:{_ics_time(stamp)}",
            f"DTSTART:{_ics_time(start)}",
            *([f"DTEND:{_ics_time(end)}"] if end > start else []),  # none: a moment
            f"SUMMARY:{_ics_text(e['summary'])}",
            f"DESCRIPTION:{_ics_text(e.get('description', ''))}",
            "STATUS:CONFIRMED",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines)


def window_json(w: Window, now: datetime, tz: tzinfo) -> dict[str, Any]:
    """A window as the API, the CLI and events show it."""
    return {
        "id": w.id,
        "system": w.system,
        "start": w.start.isoformat(),
        "end": w.end.isoformat(),
        "start_local": w.start.astimezone(tz).isoformat(),
        "end_local": w.end.astimezone(tz).isoformat(),
        "reason": w.reason,
        "short_notice": w.short_notice,
        "state": w.state(now),
        "created_at": w.created_at.isoformat() if w.created_at else None,
        "created_by": w.created_by,
        "cancelled_at": w.cancelled_at.isoformat() if w.cancelled_at else None,
    }
