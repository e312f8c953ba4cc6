"""The token bucket and the workers' shares of a limit, over fixed datetimes and plain data:
no clock, no store, no sleep."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from interlink.engine.limits import (
    SETTLE,
    SPREAD,
    Limit,
    TokenBucket,
    fair_part,
    grant,
    grants,
    held,
    retune,
    settled_at,
    strict_bucket,
    targets,
)

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


# -- the strict bucket: at most the rate in any one-second window --------------------------------


def busiest(times: list[float], width: float) -> int:
    times = sorted(times)
    most, end = 0, 0
    for start, t in enumerate(times):
        while end < len(times) and times[end] < t + width:
            end += 1
        most = max(most, end - start)
    return most


def greedy(bucket: TokenBucket, seconds: float, step: float = 0.0005) -> list[float]:
    """Send whenever a token is there, as fast as the engine could: the worst case."""
    sent: list[float] = []
    for i in range(int(seconds / step)):
        now = at(i * step)
        n = bucket.available(now)
        if n > 0:
            bucket.take(now, n)
            sent.extend([i * step] * n)
    return sent


@pytest.mark.parametrize("rate", [1, 1.5, 3, 10, 66.7, 200, 2000])
def test_strict_bucket_keeps_every_window_at_the_rate_with_arrivals_spread(rate: float) -> None:
    sent = greedy(strict_bucket(rate), 4)
    # Arrivals may spread over SPREAD seconds for every second of sends: the downstream's
    # one-second window sees what was sent within SPREAD seconds.
    assert busiest(sent, SPREAD) <= math.floor(rate)
    # And it is not a trickle: over the run, close to the rate.
    assert len(sent) >= 0.95 * math.floor(rate) * 4 - 1


def test_strict_bucket_below_one_a_second_sends_one_per_period() -> None:
    sent = greedy(strict_bucket(0.5), 10, step=0.01)
    assert busiest(sent, 2 * SPREAD) == 1
    assert len(sent) >= 4


# -- shares of one limit among workers ------------------------------------------------------------

RATE = Limit("rate:system:treasury", 200)
SLOTS = Limit("slots:system:member", 2, slots=True)


def test_fair_parts_add_up_to_the_limit() -> None:
    for live in range(1, 7):
        for limit in (RATE, SLOTS, Limit("r", 2.5), Limit("s", 7, slots=True)):
            parts = [fair_part(limit, rank, live) for rank in range(live)]
            assert sum(parts) == pytest.approx(limit.total), (limit, live)


def test_fewer_slots_than_workers_go_to_the_first_workers_whole() -> None:
    # The old rule, max(1, ceil(2 / 3)), gave each of three workers one slot: three at once.
    assert [fair_part(SLOTS, rank, 3) for rank in range(3)] == [1, 1, 0]


def test_a_small_rate_is_not_split_below_one_a_second() -> None:
    small = Limit("rate:flow:f", 2)
    assert [fair_part(small, rank, 3) for rank in range(3)] == [1, 1, 0]
    assert [fair_part(Limit("r", 0.5), rank, 2) for rank in range(2)] == [0.5, 0]


def test_grant_is_what_the_others_leave() -> None:
    assert grant(RATE, 100, others=150) == 50
    assert grant(RATE, 100, others=50) == 100
    assert grant(RATE, 100, others=200) == 0
    assert grant(RATE, 100, others=199.5) == 0  # below one a second: nothing
    assert grant(SLOTS, 2, others=0.5) == 1  # whole slots only
    assert grant(SLOTS, 1, others=3) == 0  # others over the limit (it changed): nothing


def test_a_worker_publishing_no_shares_counts_at_its_fair_part() -> None:
    assert held(RATE, None, live=3) == pytest.approx(200 / 3)
    assert held(SLOTS, None, live=3) == 1
    assert held(RATE, {"rate:system:treasury": 40}, live=3) == 40
    assert held(RATE, {}, live=3) == 0


def test_targets_rank_workers_by_id() -> None:
    registry = {"b": {}, "a": {}, "c": {}}
    assert targets([SLOTS], "a", registry) == {SLOTS.key: 1}
    assert targets([SLOTS], "c", registry) == {SLOTS.key: 0}
    assert targets([SLOTS], "d", {}) == {SLOTS.key: 2}  # alone (not yet in the registry)


def test_joining_and_leaving_never_oversubscribes() -> None:
    """Workers join, shrink and grow in every order; the registry never holds more than the
    limit, and once everyone has looked twice, each holds its fair part."""
    limits = [RATE, SLOTS, Limit("rate:flow:f", 7)]
    registry: dict[str, dict[str, float]] = {}

    def look(worker: str) -> None:
        want = targets(limits, worker, {**registry, worker: registry.get(worker, {})})
        mine = registry.get(worker, {})
        # Lower first (published after), then take what the others leave.
        lowered = {k: min(v, mine.get(k, 0.0)) for k, v in want.items()}
        registry[worker] = lowered
        registry[worker] = grants(limits, want, worker, registry)
        for limit in limits:
            total = sum(shares.get(limit.key, 0.0) for shares in registry.values())
            assert total <= limit.total + 1e-9, (limit, registry)

    order = ["w1", "w2", "w3", "w1", "w3", "w2", "w4", "w1", "w2", "w3", "w4"]
    for worker in order:
        look(worker)
    del registry["w2"]  # its heartbeat expired
    for worker in ["w4", "w3", "w1", "w4", "w3", "w1"]:
        look(worker)
    assert sum(s[RATE.key] for s in registry.values()) == pytest.approx(200)
    assert sorted(s[SLOTS.key] for s in registry.values()) == [0, 1, 1]
    assert sorted(s["rate:flow:f"] for s in registry.values()) == pytest.approx([7 / 3] * 3)


def test_a_released_share_settles_before_another_takes_it() -> None:
    assert settled_at(T0, []) == T0
    assert settled_at(T0, [None]) == T0
    assert settled_at(at(10), [at(0)]) == at(10)  # long ago
    assert settled_at(at(1), [at(0), at(0.5), None]) == at(0.5 + SETTLE)


def test_retune_never_gives_a_bucket_more_than_its_burst() -> None:
    assert retune(None, 0, T0) is None
    fresh = retune(None, 200, T0)
    assert fresh is not None and fresh.available(T0) == 0  # a new share starts empty
    assert fresh.available(at(1)) == fresh.burst
    smaller = retune(fresh, 50, at(1))
    assert smaller is fresh and smaller.available(at(1)) == 1  # capped at the new burst
    larger = retune(smaller, 2000, at(1))
    assert larger is not None and larger.available(at(1)) == 1  # keeps what it had
    assert larger.rate == strict_bucket(2000).rate
    assert retune(larger, 0, at(1)) is None
