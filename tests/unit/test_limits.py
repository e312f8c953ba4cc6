"""The token bucket over fixed datetimes: no clock, no sleep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from interlink.engine.limits import TokenBucket

T0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_starts_full_with_a_tenth_of_a_second_as_burst() -> None:
    bucket = TokenBucket(100)
    assert bucket.burst == 10
    assert bucket.available(T0) == 10


def test_burst_is_at_least_one() -> None:
    bucket = TokenBucket(2)
    assert bucket.burst == 1
    assert bucket.available(T0) == 1


def test_refills_at_the_rate_up_to_the_burst() -> None:
    bucket = TokenBucket(100)
    bucket.take(T0, 10)
    assert bucket.available(T0) == 0
    assert bucket.available(at(0.05)) == 5
    assert bucket.available(at(0.1)) == 10
    assert bucket.available(at(60)) == 10  # never more than the burst


def test_wait_time_until_the_next_token() -> None:
    bucket = TokenBucket(10, burst=5)
    bucket.take(T0, 5)
    assert bucket.wait_time(T0) == pytest.approx(0.1)
    assert bucket.wait_time(at(0.04)) == pytest.approx(0.06)
    assert bucket.wait_time(at(0.1)) == 0.0


def test_overdraft_is_paid_back_before_sending_again() -> None:
    bucket = TokenBucket(10, burst=5)
    bucket.take(T0, 8)  # more than there was: 3 in debt
    assert bucket.available(T0) <= 0
    assert bucket.wait_time(T0) == pytest.approx(0.4)
    assert bucket.available(at(0.3)) <= 0
    assert bucket.available(at(0.4)) == 1


def test_time_going_backwards_adds_nothing_and_loses_nothing() -> None:
    bucket = TokenBucket(10, burst=5)
    bucket.take(at(10), 5)
    assert bucket.available(at(9)) == 0  # an earlier reading does not refill
    assert bucket.available(at(10.2)) == 2  # and does not move the stamp back


def test_explicit_burst() -> None:
    bucket = TokenBucket(1, burst=30)
    assert bucket.available(T0) == 30


@pytest.mark.parametrize("rate", [0, -1])
def test_rate_must_be_positive(rate: float) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate)
