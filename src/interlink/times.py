"""Times given by people: ISO 8601, in the topology's time zone when no offset is given."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

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
