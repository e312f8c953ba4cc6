"""Times given by people: ISO 8601, in the topology's time zone when no offset is given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

from interlink.errors import InputError


def parse_time(value: str, tz: tzinfo, name: str = "time") -> datetime:
    """An aware UTC datetime from ISO 8601 text; a date alone means its midnight."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            f"{name}: {value!r} is not an ISO 8601 time (e.g. 2026-11-25T17:00 or "
            "2026-11-25T17:00+08:00)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz)
    return when.astimezone(UTC)


def duration(span: timedelta | float | None) -> str:
    """A duration for people, to the two largest units: ``2 days``, ``1 h 30 min``, ``45 s``.

    ``str(timedelta)`` prints ``2 days, 0:00:00``, which nobody on duty should have to parse.
    Seconds count only below an hour; below a second the milliseconds show.
    """
    if span is None:
        return "-"
    seconds = span.total_seconds() if isinstance(span, timedelta) else float(span)
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 1:
        return f"{sign}{round(seconds * 1000)} ms"
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = []
    if days:
        parts.append(f"{days} day" + ("s" if days != 1 else ""))
    if hours:
        parts.append(f"{hours} h")
    if minutes:
        parts.append(f"{minutes} min")
    if secs and not days and not hours:
        parts.append(f"{secs} s")
    return sign + " ".join(parts[:2])


def zone_name(tz: tzinfo) -> str:
    """The zone as the topology names it (``Asia/Shanghai``), else its abbreviation."""
    key = getattr(tz, "key", None)
    return key if isinstance(key, str) else (datetime.now(tz).tzname() or "UTC")


def local_text(when: datetime, tz: tzinfo) -> str:
    """``2026-11-25 17:00 Asia/Shanghai``: a time in the topology's zone, with the zone named,
    so a reader never has to guess whether it is UTC."""
    local = when.astimezone(tz)
    text = f"{local:%Y-%m-%d %H:%M}" if local.second == 0 else f"{local:%Y-%m-%d %H:%M:%S}"
    return f"{text} {zone_name(tz)}"
