from __future__ import annotations

from datetime import timedelta

import pytest

from interlink.clock import FakeClock
from interlink.engine.retry import RetryPolicy

S = timedelta(seconds=1)
POLICY = RetryPolicy(schedule=(10 * S, 60 * S, 300 * S), give_up_after=timedelta(hours=1))


@pytest.mark.parametrize(
    ("failures", "delay"),
    [(1, 10 * S), (2, 60 * S), (3, 300 * S), (4, 300 * S), (100, 300 * S)],
)
def test_delay_indexes_schedule_and_repeats_last_step(failures: int, delay: timedelta) -> None:
    assert POLICY.delay(failures) == delay


def test_delay_needs_a_failure() -> None:
    with pytest.raises(ValueError, match="starts at 1"):
        POLICY.delay(0)


def test_empty_schedule_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one step"):
        RetryPolicy(schedule=(), give_up_after=timedelta(hours=1))


def test_next_attempt_follows_schedule() -> None:
    clock = FakeClock()
    first = clock.now()
    assert POLICY.next_attempt(1, first, clock.now()) == first + 10 * S
    clock.advance(10)
    assert POLICY.next_attempt(2, first, clock.now()) == clock.now() + 60 * S


def test_give_up_boundary() -> None:
    clock = FakeClock()
    first = clock.now()
    # 300 s after now lands exactly on the deadline: still allowed.
    clock.advance(timedelta(hours=1) - 300 * S)
    assert POLICY.next_attempt(5, first, clock.now()) == first + timedelta(hours=1)
    # One second later the next attempt would be past it: give up.
    clock.advance(1)
    assert POLICY.next_attempt(5, first, clock.now()) is None


def test_retry_after_stretches_the_delay() -> None:
    clock = FakeClock()
    now = clock.now()
    assert POLICY.next_attempt(1, now, now, retry_after=120) == now + 120 * S
    assert POLICY.next_attempt(1, now, now, retry_after=2.5) == now + 10 * S
    assert POLICY.next_attempt(1, now, now, retry_after=0) == now + 10 * S
    assert POLICY.next_attempt(1, now, now, retry_after=None) == now + 10 * S


def test_retry_after_past_deadline_gives_up() -> None:
    clock = FakeClock()
    now = clock.now()
    assert POLICY.next_attempt(1, now, now, retry_after=7200) is None
