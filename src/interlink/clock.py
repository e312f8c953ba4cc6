"""The injectable clock.

Everything that asks what time it is asks a :class:`Clock`. Production code uses
:class:`SystemClock`; tests use :class:`FakeClock` and move time forward by hand, so retries,
windows and deadlines are tested without sleeping.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 5, 2, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta | float) -> datetime:
        if not isinstance(delta, timedelta):
            delta = timedelta(seconds=delta)
        self._now += delta
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when


def latest_scheduled(now: datetime, schedule: Sequence[time], tz: tzinfo) -> datetime | None:
    """The most recent of ``schedule``'s times of day (in ``tz``) at or before ``now``."""
    if not schedule:
        return None
    local = now.astimezone(tz)
    for days in (0, 1):
        day = local.date() - timedelta(days=days)
        passed = [at for at in (datetime.combine(day, t, tz) for t in schedule) if at <= local]
        if passed:
            return max(passed)
    return None


def next_scheduled(now: datetime, schedule: Sequence[time], tz: tzinfo) -> datetime | None:
    """The first of ``schedule``'s times of day (in ``tz``) after ``now``."""
    if not schedule:
        return None
    local = now.astimezone(tz)
    for days in (0, 1):
        day = local.date() + timedelta(days=days)
        coming = [at for at in (datetime.combine(day, t, tz) for t in schedule) if at > local]
        if coming:
            return min(coming)
    return None
