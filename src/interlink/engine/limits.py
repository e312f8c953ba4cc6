"""Rate and concurrency limits: a token bucket per flow and per downstream system, and how
the workers share each declared limit between them.

Pure arithmetic over the injected clock and plain data: the engine asks how many sends it may
start now and takes that many tokens; nothing here sleeps or reads the store.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


class TokenBucket:
    """``rate`` tokens per second, holding at most ``burst`` (default: a tenth of a second's)."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = max(1.0, burst if burst is not None else rate / 10)
        self.tokens = self.burst
        self.stamp: datetime | None = None

    def _refill(self, now: datetime) -> None:
        if self.stamp is not None:
            elapsed = (now - self.stamp).total_seconds()
            if elapsed > 0:
                self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        if self.stamp is None or now > self.stamp:
            self.stamp = now

    def available(self, now: datetime) -> int:
        self._refill(now)
        return int(self.tokens)

    def take(self, now: datetime, count: int) -> None:
        self._refill(now)
        self.tokens -= count

    def wait_time(self, now: datetime) -> float:
        """Seconds until one token is available."""
        self._refill(now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate


# Seconds of arrivals one second of tokens may spread over at the downstream (see below).
SPREAD = 1.01


def strict_bucket(rate: float) -> TokenBucket:
    """A bucket that lets at most ``rate`` through in any one-second window.

    A plain bucket allows its burst on top of a second's fill; here the burst (a fiftieth of a
    second's worth, a whole number, enough to keep sends flowing between dispatch rounds) is
    taken out of the fill rate, so burst + fill never exceeds the limit the downstream
    declared. The fill is counted over SPREAD seconds rather than one: the downstream counts
    requests when they arrive, and the time from taking a token to arriving varies with the
    sender's load (measured: 1,505 arrivals in one second against 1,500/s with three busy
    workers on two cores). Sends are whole, so a window sees at most burst + floor(fill *
    SPREAD) of them: the fill may come up to one short of the next whole send. Below one a
    second, one request at a time, at most one in any window of 1/rate seconds.
    """
    if rate < 1:
        return TokenBucket(rate / SPREAD, 1.0)
    burst = max(1.0, float(math.floor(rate / 50)))
    fill = (math.floor(rate) - burst + 1) / SPREAD * (1 - 1e-6)
    return TokenBucket(fill, burst)


# -- one limit, several workers ----------------------------------------------------------------
#
# Every worker process takes a share of each declared limit, and the shares of all workers
# together never exceed it. The shares live in the store's worker registry (``workers``):
#
# - a worker sends within what it has *published* there, never more: it lowers its own
#   buckets first and publishes the lower share after, and takes more only by publishing it,
#   in a transaction that serialises against every other worker's, out of what the others'
#   published shares leave free;
# - a new worker starts with nothing and grows towards its fair part (the limit divided by
#   the live workers, the dead ones included until their heartbeat expires);
# - a worker that has not renewed its heartbeat for FENCE seconds sends nothing more until it
#   has; the others count its share as theirs only LIVE seconds after that heartbeat, so a
#   SIGKILLed worker's share is reclaimed only once it surely sends no more;
# - a share released by one worker is taken by another only SETTLE seconds after the
#   release, so that no one-second window sees the tokens of both: the first worker may have
#   spent its burst at the start of the window, the second one's bucket starts full.

HEARTBEAT = 2.0  # seconds between a worker's heartbeats
FENCE = 2 * HEARTBEAT  # no heartbeat renewed for this long: the worker stops sending
LIVE = 3 * HEARTBEAT  # no heartbeat for this long: the others take over the worker's share
SETTLE = 1.5  # a released share may be taken again this long after (a window and a margin)


@dataclass(frozen=True, slots=True)
class Limit:
    """A limit the topology declares: ``total`` requests per second, or at once (``slots``)."""

    key: str
    total: float
    slots: bool = False


Shares = Mapping[str, float]


def fair_part(limit: Limit, rank: int, live: int) -> float:
    """The part of ``limit`` for the worker ranked ``rank`` (by id) among ``live`` workers.

    Parts are whole slots, and rates of at least one per second (a bucket sends whole
    requests): with fewer than there are workers, the first-ranked workers take them all.
    """
    live = max(1, live)
    if limit.slots:
        whole = int(limit.total)
        return float(whole // live + (1 if rank < whole % live else 0))
    senders = max(1, min(live, math.floor(limit.total)))
    return limit.total / senders if rank < senders else 0.0


def held(limit: Limit, shares: Shares | None, live: int) -> float:
    """What a registered worker holds of ``limit``. A worker that publishes no shares (one
    of an older version, mid-upgrade) is counted at its fair part, as it takes that."""
    if shares is None:
        part = limit.total / max(1, live)
        return float(math.ceil(part)) if limit.slots else part
    return float(shares.get(limit.key, 0.0))


def grant(limit: Limit, want: float, others: float) -> float:
    """Up to ``want`` of ``limit``, out of what the others' ``others`` leave free; whole
    slots, and no rate below one a second (or below the whole limit, when that is less)."""
    free = limit.total - others
    got = min(want, free)
    if limit.slots:
        return float(max(0, math.floor(got + 1e-9)))
    floor = min(1.0, limit.total)
    # Float sums of other workers' parts may come out a hair over the total.
    return got if got >= floor - 1e-9 and got > 0 else 0.0


def targets(
    limits: Sequence[Limit], me: str, live: Mapping[str, Shares | None]
) -> dict[str, float]:
    """This worker's fair part of every limit, ``live`` being the registry (itself in it)."""
    ranked = sorted({*live, me})
    rank = ranked.index(me)
    return {limit.key: fair_part(limit, rank, len(ranked)) for limit in limits}


def grants(
    limits: Sequence[Limit],
    want: Shares,
    me: str,
    live: Mapping[str, Shares | None],
) -> dict[str, float]:
    """What this worker may hold of every limit: its ``want``, as far as the others' shares
    in the registry (``live``, read under the registry's lock) leave room."""
    count = len({*live, me})
    return {
        limit.key: grant(
            limit,
            want.get(limit.key, 0.0),
            sum(held(limit, shares, count) for worker, shares in live.items() if worker != me),
        )
        for limit in limits
    }


def settled_at(now: datetime, releases: Iterable[datetime | None]) -> datetime:
    """When shares granted now may be used: SETTLE after the latest release by another."""
    latest = max((r for r in releases if r is not None), default=None)
    if latest is None:
        return now
    return max(now, latest + timedelta(seconds=SETTLE))


def retune(bucket: TokenBucket | None, share: float, now: datetime) -> TokenBucket | None:
    """The bucket for a rate share (None: no share). A share that shrinks keeps no more
    tokens than its new burst; one that grows keeps the tokens it has; a new one starts
    empty. So a worker's bucket never holds more than its burst, and never sends the burst
    twice within a window however its share moves."""
    if share <= 0:
        return None
    fresh = strict_bucket(share)
    if bucket is None:
        fresh.tokens = 0.0
        fresh.stamp = now
        return fresh
    bucket._refill(now)
    bucket.rate = fresh.rate
    bucket.burst = fresh.burst
    bucket.tokens = min(bucket.tokens, fresh.burst)
    return bucket
