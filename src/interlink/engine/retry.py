"""When to try a failed delivery again, and when to stop trying."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class RetryPolicy:
    schedule: tuple[timedelta, ...]
    """Wait after the 1st, 2nd, ... failure; the last step repeats."""
    give_up_after: timedelta
    """Measured from the first failure, so a re-push starts a fresh budget."""

    def __post_init__(self) -> None:
        if not self.schedule:
            raise ValueError("a retry schedule needs at least one step")
        if any(step < timedelta(0) for step in self.schedule):
            raise ValueError("retry schedule steps must not be negative")

    def delay(self, failures: int) -> timedelta:
        """The wait after ``failures`` failed attempts (1 or more)."""
        if failures < 1:
            raise ValueError(f"failures counts failed attempts and starts at 1, got {failures}")
        return self.schedule[min(failures, len(self.schedule)) - 1]

    def next_attempt(
        self,
        failures: int,
        first_failure_at: datetime,
        now: datetime,
        retry_after: float | None = None,
    ) -> datetime | None:
        """When to try again, or None when that would be past the give-up deadline."""
        wait = self.delay(failures)
        # A downstream's Retry-After can stretch the wait but never shorten it: the schedule is
        # our own promise not to hammer a struggling system.
        if retry_after is not None and retry_after > wait.total_seconds():
            wait = timedelta(seconds=retry_after)
        at = now + wait
        if at > first_failure_at + self.give_up_after:
            return None
        return at
