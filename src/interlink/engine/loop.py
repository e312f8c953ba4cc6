"""The delivery engine: claim → send → record.

One :class:`Engine` per worker process. It claims due deliveries in batches under a lease,
sends them through the transport within each flow's concurrency and rate limits, classifies
every answer, and records the outcomes of many sends in one write (group commit). Everything
that decides *what happens next* is pure and lives beside it: :mod:`.outcome` (what an answer
means), :mod:`.retry` (when to try again), :mod:`.circuit` (when a downstream counts as down),
:mod:`.holds` (where a delivery waits) and :mod:`.limits` (how fast).

``step()`` runs one claim-send-record cycle and returns; tests drive it with a fake clock.
``run()`` is the pipelined loop that ``serve`` and ``worker`` use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from interlink.clock import Clock
from interlink.config import Flow, Topology
from interlink.engine import circuit as breaker
from interlink.engine.circuit import Circuit, CircuitPolicy, CircuitState, Transition
from interlink.engine.holds import placement
from interlink.engine.limits import (
    FENCE,
    HEARTBEAT,
    LIVE,
    SETTLE,
    Limit,
    TokenBucket,
    grants,
    retune,
    settled_at,
    targets,
)
from interlink.engine.outcome import (
    Classified,
    Outcome,
    answer_text,
    classify_error,
    classify_response,
    local_error,
)
from interlink.engine.retry import RetryPolicy
from interlink.errors import ConfigError, InterlinkError, TransportError
from interlink.hooks import Hooks
from interlink.metrics import CIRCUIT, LATENCY, OUTCOMES
from interlink.model import DeadReason, HoldReason, Status
from interlink.store import queries as q
from interlink.store.db import Store
from interlink.transports.base import Request, Transport
from interlink.transports.signing import delivery_headers

log = logging.getLogger("interlink.engine")

RESPONSE_KEEP = 4096


@dataclass(slots=True)
class Job:
    """A leased delivery on its way out."""

    id: int
    document_id: str
    flow: Flow
    key: str
    revision: int
    attempts: int
    failures: int
    first_failure_at: datetime | None
    lease_until: datetime
    probe: bool
    type: str = ""
    body: bytes = b""


@dataclass(slots=True)
class Sent:
    job: Job
    started_at: datetime
    elapsed_ms: float
    classified: Classified
    status_code: int | None
    response: str | None


@dataclass
class Plan:
    """What one batch of outcomes does to the store; applied in one write."""

    attempts: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    delivered_keys: set[tuple[str, str]] = field(default_factory=set)
    circuits: dict[str, Circuit] = field(default_factory=dict)
    opened: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    update_flows: list[str] = field(default_factory=list)
    auth_flows: dict[str, str] = field(default_factory=dict)
    events: list[tuple[str, dict[str, Any], str | None, str | None]] = field(default_factory=list)


class Engine:
    def __init__(
        self,
        topology: Topology,
        store: Store,
        clock: Clock,
        transport: Transport,
        worker_id: str | None = None,
        hooks: Hooks | None = None,
    ) -> None:
        self.topology = topology
        self.hooks = hooks or Hooks()
        self.system_holds: dict[str, str] = {}
        self.store = store
        self.clock = clock
        self.transport = transport
        self.worker_id = worker_id or f"{os.uname().nodename}:{os.getpid()}"
        settings = topology.engine
        self.batch = settings.batch
        self.lease = settings.lease
        self.policy = CircuitPolicy(
            threshold=settings.circuit_threshold,
            probe_interval=settings.probe_interval,
            probe_max=settings.probe_max,
        )
        self.flows = dict(topology.flows)
        self.retry = {
            name: RetryPolicy(tuple(flow.retry), flow.give_up_after)
            for name, flow in self.flows.items()
        }
        self.secrets = {name: system.secret() for name, system in topology.systems.items()}
        # Each worker sends within its share of every declared limit, granted through the
        # store's worker registry so that all of them together keep to the topology (see
        # engine.limits). A new worker holds nothing until the registry has granted it.
        self.declared = self._declared()
        self.shares: dict[str, float] = {}  # what this worker sends within now
        self.published: dict[str, float] = {}  # what the registry says it holds (>= shares)
        self._pending: tuple[datetime, dict[str, float]] | None = None  # granted, usable at
        # Below its fair part: look at the registry more often, as the others shrink.
        self._settling = True
        # Slots still published for requests in flight that another worker waits for: give
        # them back as soon as those requests are over.
        self._owing = False
        self._registry_news = False  # another worker asked everyone to look at the registry
        self.flow_limit: dict[str, int] = {}
        self.system_limit: dict[str, int] = {}
        self.buckets: dict[str, TokenBucket] = {}
        keys = {limit.key for limit in self.declared}
        self._rate_keys = {
            name: [k for k in (f"rate:flow:{name}", f"rate:system:{f.target}") if k in keys]
            for name, f in self.flows.items()
        }
        self._confirmed_at: datetime | None = None  # the last heartbeat the store has
        self._swept_at: datetime | None = None
        self.inflight: dict[str, int] = defaultdict(int)
        self.system_inflight: dict[str, int] = defaultdict(int)
        self.throttled_until: dict[str, datetime] = {}
        self.circuits: dict[str, Circuit] = {}
        self.flow_holds: dict[str, str] = {}
        self._loaded = False
        self._latency = {name: LATENCY.labels(name) for name in self.flows}
        self._outcome_counters: dict[tuple[str, Outcome], Any] = {}
        self._sendq: asyncio.Queue[Job | None] = asyncio.Queue()
        self._outcomes: list[Sent] = []
        # New work announced (wake(), LISTEN/NOTIFY): claim now rather than at the next poll.
        self._wake = asyncio.Event()
        # Something the dispatching loop waits for happened: a send finished, a claim came
        # back, news, stop. One event, so that each turn of the loop waits on one thing.
        self._attention = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._outcome_ready = asyncio.Event()

    # -- state shared with the store -------------------------------------------------------

    def _declared(self) -> list[Limit]:
        """Every limit the workers share: each flow's concurrency (the topology's default
        when none is declared), and the declared system concurrencies and rates."""
        topology = self.topology
        systems = topology.systems
        return [
            *(
                Limit(f"slots:flow:{name}", topology.flow_concurrency(f), slots=True)
                for name, f in self.flows.items()
            ),
            *(
                Limit(f"slots:system:{name}", s.concurrency, slots=True)
                for name, s in systems.items()
                if s.concurrency
            ),
            *(Limit(f"rate:flow:{name}", f.rate) for name, f in self.flows.items() if f.rate),
            *(Limit(f"rate:system:{name}", s.rate) for name, s in systems.items() if s.rate),
        ]

    def _use_shares(self, shares: dict[str, float], now: datetime) -> None:
        """Send within ``shares`` from now on."""
        self.shares = shares
        self.flow_limit = {name: int(shares.get(f"slots:flow:{name}", 0)) for name in self.flows}
        self.system_limit = {
            name: int(shares.get(f"slots:system:{name}", 0))
            for name, s in self.topology.systems.items()
            if s.concurrency
        }
        for limit in self.declared:
            if not limit.slots:
                bucket = retune(self.buckets.get(limit.key), shares.get(limit.key, 0.0), now)
                if bucket is None:
                    self.buckets.pop(limit.key, None)
                else:
                    self.buckets[limit.key] = bucket

    def _fenced(self, now: datetime) -> bool:
        """No heartbeat for FENCE seconds: the others may soon take this worker's shares."""
        confirmed = self._confirmed_at
        return confirmed is None or (now - confirmed).total_seconds() > FENCE

    def _registry_due(self, now: datetime) -> bool:
        if self._confirmed_at is None or self._registry_news:
            return True
        elapsed = (now - self._confirmed_at).total_seconds()
        if self._owing:
            return elapsed >= HEARTBEAT / 20
        return elapsed >= (HEARTBEAT / 4 if self._settling else HEARTBEAT)

    async def _register(self, now: datetime) -> None:
        """Renew the heartbeat and settle this worker's shares with the registry: lower
        them here first, publish after; take more only by publishing it (engine.limits)."""
        self._registry_news = False
        reset = self._fenced(now)
        if reset:
            # New, or its heartbeat lapsed and the others may have taken what it held.
            self._pending = None
            self._use_shares({}, now)
        rows = await self.store.write(lambda conn: self._heartbeat(conn, now, reset))
        self._confirmed_at = now
        if reset:
            self.published = {}
        want = targets(self.declared, self.worker_id, {r.id: r.shares for r in rows if r.live})
        self._pending = None
        self._use_shares(
            {key: min(part, self.shares.get(key, 0.0)) for key, part in want.items()},
            self.clock.now(),
        )
        granted, published, releases = await self.store.write(
            lambda conn: self._publish(conn, want)
        )
        if published != self.published:
            log.info("shares of the declared limits now %s", published)
        self.published = published
        self._settling = any(granted[key] < part for key, part in want.items())
        self._owing = any(published[key] > granted[key] for key in granted)
        now = self.clock.now()
        usable = settled_at(now, releases)
        # More of a rate waits until what others gave back has settled (engine.limits); a
        # slot is free the moment the registry shows it, as a request in flight keeps its own.
        rates = {limit.key for limit in self.declared if not limit.slots}
        self._use_shares(
            {
                key: min(part, self.shares.get(key, 0.0)) if key in rates and usable > now else part
                for key, part in granted.items()
            },
            now,
        )
        if usable > now and any(granted[k] > self.shares.get(k, 0.0) for k in rates):
            self._settling = True
            self._pending = (usable, granted)

    def _heartbeat(self, conn: Connection, now: datetime, reset: bool) -> list[q.Registered]:
        q.heartbeat(conn, self.worker_id, now, LIVE, reset)
        if reset:
            q.notify_registry(conn)  # the others shrink to make room now, not at their next
        return q.registry(conn, now, LIVE, SETTLE)

    def _publish(
        self, conn: Connection, want: dict[str, float]
    ) -> tuple[dict[str, float], dict[str, float], list[datetime | None]]:
        """Under the registry's lock: take what the others leave of ``want``; publish it."""
        now = self.clock.now()
        rows = q.registry(conn, now, LIVE, SETTLE)
        granted = grants(
            self.declared, want, self.worker_id, {r.id: r.shares for r in rows if r.live}
        )
        # A slot taken by a request still in flight stays published until it is over.
        published = dict(granted)
        for key, busy in self._in_use().items():
            published[key] = max(published.get(key, 0.0), float(busy))
        shrank = any(published.get(key, 0.0) < held for key, held in self.published.items())
        # Only a rate given back needs to settle before another worker takes it (a slot is
        # given back only once its request is over).
        released = any(
            published.get(limit.key, 0.0) < self.published.get(limit.key, 0.0)
            for limit in self.declared
            if not limit.slots
        )
        q.publish_shares(conn, self.worker_id, published, now if released else None)
        if shrank:
            q.notify_registry(conn)  # room made: a worker waiting for it takes it now
        return granted, published, [r.released_at for r in rows if r.id != self.worker_id]

    def _in_use(self) -> dict[str, int]:
        """Slots taken now. Read from the store's thread: ``get``, never the defaultdicts'
        inserting lookup."""
        return {
            **{f"slots:flow:{name}": self.inflight.get(name, 0) for name in self.flows},
            **{
                f"slots:system:{name}": self.system_inflight.get(name, 0)
                for name in self.system_limit
            },
        }

    def _settle(self, now: datetime) -> None:
        """Shares granted earlier become usable once what others released has settled."""
        if self._pending is not None and now >= self._pending[0]:
            granted = self._pending[1]
            self._pending = None
            self._use_shares(granted, now)
            self._wake.set()  # the run loop: claim for the new share

    def _sweep(self, conn: Connection, now: datetime) -> None:
        """Release holds whose reason is gone (see queries.stale_holds)."""
        open_systems = {s for s, c in self.circuits.items() if c.state == CircuitState.OPEN}
        groups: dict[tuple[str, str | None], list[int]] = defaultdict(list)
        for row in q.stale_holds(conn, open_systems, self.flow_holds, self.system_holds):
            if row.flow not in self.flows:
                continue
            status, reason = placement(
                flow_hold=self.flow_holds.get(row.flow),
                system_hold=self.system_holds.get(row.system)
                or (HoldReason.DOWNSTREAM_DOWN if row.system in open_systems else None),
            )
            if reason != row.reason:
                groups[(status, reason)].append(row.id)
        for (to_status, to_reason), ids in groups.items():
            log.info("released %d deliveries left %s", len(ids), "held")
            q.set_state(conn, ids, to_status, to_reason, now)

    def _load(self, conn: Connection) -> None:
        """Circuit state is shared by every worker: re-read it each cycle (a few rows)."""
        probing = q.probing_systems(conn)
        for row in q.load_circuits(conn):
            self.circuits[row.system] = Circuit(
                system=row.system,
                state=CircuitState(row.state),
                failures=row.failures,
                opened_at=row.opened_at,
                next_probe_at=row.next_probe_at,
                probe_interval=(
                    timedelta(seconds=row.probe_interval) if row.probe_interval else None
                ),
                # Probing while some worker's probe is in flight; a dead worker's probe
                # comes back with its lease.
                probing=row.system in probing,
            )
        self._loaded = True

    def circuit(self, system: str) -> Circuit:
        found = self.circuits.get(system)
        if found is None:
            found = self.circuits[system] = Circuit(system=system)
        return found

    def wake(self) -> None:
        """New work arrived: claim now rather than at the next poll. Safe from any thread."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._news)

    def _news(self) -> None:
        self._wake.set()
        self._attention.set()

    # -- claim ----------------------------------------------------------------------------

    def _blocked(self, flow: Flow, now: datetime) -> bool:
        """The flow may not send now: held, its downstream's circuit open, or throttled."""
        if flow.name in self.flow_holds or flow.target in self.system_holds:
            return True
        if self.circuit(flow.target).state == CircuitState.OPEN:
            return True
        until = self.throttled_until.get(flow.name)
        return until is not None and until > now

    def _capacity(self, flow: Flow, now: datetime) -> int:
        """How many sends ``flow`` may start now: concurrency and rate, flow and system."""
        if self._blocked(flow, now) or self._fenced(now):
            return 0
        free = self.flow_limit.get(flow.name, 0) - self.inflight[flow.name]
        system_cap = self.system_limit.get(flow.target)
        if system_cap is not None:
            free = min(free, system_cap - self.system_inflight[flow.target])
        buckets = self._buckets(flow)
        if buckets is None:
            return 0
        for bucket in buckets:
            free = min(free, bucket.available(now))
        return max(0, min(free, self.batch))

    def _buckets(self, flow: Flow) -> list[TokenBucket] | None:
        """The flow's and its system's rate buckets; None while a declared rate has no
        share in this worker."""
        found = []
        for key in self._rate_keys[flow.name]:
            bucket = self.buckets.get(key)
            if bucket is None:
                return None
            found.append(bucket)
        return found

    def _prefetch(self, flow: Flow, buffered: int, now: datetime) -> int:
        """How many more to claim ahead for ``flow``: about a second's worth, up to a batch."""
        if self._blocked(flow, now) or self._fenced(now):
            return 0
        buckets = self._buckets(flow)
        if buckets is None or self.flow_limit.get(flow.name, 0) <= 0:
            return 0  # nothing this worker may send: leave it to the others
        if self.system_limit.get(flow.target, 1) <= 0:
            return 0
        cap = self.batch
        for bucket in buckets:
            cap = min(cap, max(1, int(bucket.rate)))
        if buffered > cap // 2:
            return 0
        return cap - buffered

    def _claim_job(
        self, conn: Connection, now: datetime, want: dict[str, int] | None, sweep: bool
    ) -> list[Job]:
        q.recover_expired_leases(conn, now)
        self._load(conn)
        for housekeeper in self.hooks.housekeepers:
            housekeeper(conn, now)
        self.flow_holds = q.flow_holds(conn)
        self.system_holds = self.hooks.system_holds(conn, now)
        if sweep:
            self._sweep(conn, now)
        jobs: list[Job] = []
        for system, circ in self.circuits.items():
            if system in self.system_holds:
                continue  # no probes during a maintenance window
            if breaker.probe_due(circ, now) and system in self.topology.systems:
                rows = q.claim_probe(conn, system, now, now + self._lease_for(system))
                if rows:
                    breaker.start_probe(circ)
                    q.save_circuit(conn, _circuit_row(circ, now))
                    jobs.extend(self._job(row, probe=True) for row in rows)
                else:
                    # Nothing held to probe with: try again after the interval.
                    circ.next_probe_at = now + (circ.probe_interval or self.policy.probe_interval)
        for name, flow in self.flows.items():
            if self._blocked(flow, now):
                continue
            limit = self._capacity(flow, now) if want is None else want.get(name, 0)
            if limit <= 0:
                continue
            rows = q.claim(conn, name, now, now + self._lease_for(flow.target), limit)
            jobs.extend(self._job(row, probe=False) for row in rows)
        unread = [job for job in jobs if not job.type]
        if unread:
            found = q.payloads(conn, [j.document_id for j in unread])
            for job in unread:
                doc = found[job.document_id]
                job.type = doc.type
                job.body = doc.payload.encode()
        return jobs

    def _lease_for(self, system: str) -> timedelta:
        return self.lease + self.topology.systems[system].timeout

    def _job(self, row: Any, probe: bool) -> Job:
        """A job from a claimed row; its document too when the claim read it (PostgreSQL)."""
        payload = getattr(row, "payload", None)
        return Job(
            id=row.id,
            document_id=row.document_id,
            flow=self.flows[row.flow],
            key=row.key,
            revision=row.revision,
            attempts=row.attempts,
            failures=row.failures,
            first_failure_at=row.first_failure_at,
            lease_until=row.lease_until,
            probe=probe,
            type=row.type if payload is not None else "",
            body=payload.encode() if payload is not None else b"",
        )

    async def claim(self, want: dict[str, int] | None = None) -> list[Job]:
        """Lease due deliveries. Without ``want``, as many as may be sent right now, counted
        as started; with it, that many per flow to buffer (the pipelined loop)."""
        now = self.clock.now()
        self._settle(now)
        if self._registry_due(now):
            await self._register(now)
        sweep = self._swept_at is None or (now - self._swept_at).total_seconds() >= HEARTBEAT
        if sweep:
            self._swept_at = now
        jobs = await self.store.write(lambda conn: self._claim_job(conn, now, want, sweep))
        if want is None:
            for job in jobs:
                self._start(job, now)
        return jobs

    def _start(self, job: Job, now: datetime) -> None:
        self.inflight[job.flow.name] += 1
        self.system_inflight[job.flow.target] += 1
        if not job.probe:
            for bucket in self._buckets(job.flow) or ():
                bucket.take(now, 1)

    # -- send -----------------------------------------------------------------------------

    async def send(self, job: Job) -> Sent:
        flow = job.flow
        started_at = self.clock.now()
        t0 = time.perf_counter()
        status_code: int | None = None
        response_text: str | None = None
        try:
            request = self._request(job, started_at)
        except (ValueError, TypeError, UnicodeError, ConfigError) as exc:
            # Ours to fix (a key that cannot be a header, a secret that cannot sign), not the
            # downstream's: the delivery goes dead and the circuit never hears of it (plan).
            classified = local_error(f"request not built: {exc}")
        else:
            try:
                response = await self.transport.send(request)
            except TransportError as exc:
                classified = classify_error(exc)
                response_text = exc.message[:RESPONSE_KEEP]
            except Exception as exc:  # a transport bug must not lose the delivery
                log.exception("transport failed unexpectedly")
                classified = classify_error(TransportError("protocol", str(exc)))
            else:
                status_code = response.status
                classified = classify_response(
                    response.status, response.headers, response.body, self.clock.now()
                )
                response_text = answer_text(response.body[:RESPONSE_KEEP])
        elapsed = time.perf_counter() - t0
        # The request is over: its slot is free now, not once the outcome is recorded.
        self.inflight[flow.name] -= 1
        self.system_inflight[flow.target] -= 1
        self._attention.set()
        self._latency[flow.name].observe(elapsed)
        counter = self._outcome_counters.get((flow.name, classified.outcome))
        if counter is None:
            counter = OUTCOMES.labels(flow.name, classified.outcome.value)
            self._outcome_counters[(flow.name, classified.outcome)] = counter
        counter.inc()
        return Sent(job, started_at, elapsed * 1000, classified, status_code, response_text)

    def _request(self, job: Job, started_at: datetime) -> Request:
        """The request for ``job``; ValueError (and kin) when it cannot be built or signed,
        ConfigError when its system has no URL."""
        flow = job.flow
        return Request(
            url=self.topology.downstream_url(flow),
            body=job.body,
            headers=delivery_headers(
                document_id=job.document_id,
                document_type=job.type,
                key=job.key,
                revision=job.revision,
                timestamp=int(started_at.timestamp()),
                body=job.body,
                secret=self.secrets.get(flow.target),
            ),
            timeout=self.topology.systems[flow.target].timeout.total_seconds(),
        )

    # -- record ---------------------------------------------------------------------------

    def plan(self, sent: list[Sent], now: datetime) -> Plan:
        """Decide, for each outcome, the delivery's next state. Pure but for circuit state."""
        plan = Plan()
        for s in sent:
            job, c = s.job, s.classified
            flow = job.flow
            circ = self.circuit(flow.target)
            if c.outcome == Outcome.LOCAL_ERROR:
                # Nothing reached the downstream, so its circuit learns nothing: no failure
                # counted, no success either. A probe that could not be built frees the
                # probe slot at once, so the next held delivery probes in its place.
                transition = Transition.NONE
                if job.probe:
                    circ.probing = False
            else:
                transition = breaker.record(circ, self.policy, c.outcome, now, probe=job.probe)
            if transition != Transition.NONE:
                plan.circuits[flow.target] = circ
                (plan.opened if transition == Transition.OPENED else plan.closed).append(
                    flow.target
                )
                CIRCUIT.labels(flow.target, transition.value).inc()
                plan.events.append(
                    (
                        f"circuit_{transition.value}",
                        {"failures": circ.failures, "detail": c.detail, "delivery": job.id},
                        flow.target,
                        None,
                    )
                )
            elif job.probe or circ.state == CircuitState.OPEN:
                plan.circuits[flow.target] = circ
            plan.attempts.append(
                {
                    "delivery_id": job.id,
                    "started_at": s.started_at,
                    "elapsed_ms": s.elapsed_ms,
                    "status_code": s.status_code,
                    "outcome": c.outcome.value,
                    "detail": c.detail,
                    "response": s.response,
                    "probe": job.probe,
                }
            )
            update: dict[str, Any] = {
                "b_id": job.id,
                "b_lease": job.lease_until,
                "attempts": job.attempts + 1,
                "failures": job.failures,
                "first_failure_at": job.first_failure_at,
                "next_at": None,
                "delivered_at": None,
                "last_error": None,
                "updated_at": now,
                "reason": None,
            }
            outcome = c.outcome
            if c.delivered:
                update.update(status=Status.DELIVERED, delivered_at=now, failures=0)
                update["first_failure_at"] = None
                if flow.ordered:
                    plan.delivered_keys.add((flow.name, job.key))
            elif outcome == Outcome.REJECTED:
                update.update(status=Status.DEAD, reason=DeadReason.REJECTED, last_error=c.detail)
                plan.events.append(
                    (
                        "delivery_rejected",
                        {"delivery": job.id, "detail": c.detail},
                        flow.target,
                        flow.name,
                    )
                )
            elif outcome == Outcome.LOCAL_ERROR:
                update.update(
                    status=Status.DEAD, reason=DeadReason.LOCAL_ERROR, last_error=c.detail
                )
                plan.events.append(
                    (
                        "delivery_local_error",
                        {"delivery": job.id, "detail": c.detail},
                        flow.target,
                        flow.name,
                    )
                )
            elif outcome == Outcome.UNAUTHORIZED:
                update.update(status=Status.HELD, reason=HoldReason.AUTH, last_error=c.detail)
                if flow.name not in self.flow_holds and flow.name not in plan.auth_flows:
                    plan.auth_flows[flow.name] = c.detail
            elif outcome == Outcome.UNAVAILABLE and circ.state == CircuitState.OPEN:
                # Held, not failed: a down system spends no retry budget.
                update.update(
                    status=Status.HELD, reason=HoldReason.DOWNSTREAM_DOWN, last_error=c.detail
                )
            else:  # unavailable (circuit closed) or throttled: retry on schedule
                policy = self.retry[flow.name]
                first = job.first_failure_at or now
                if outcome == Outcome.THROTTLED and c.retry_after is not None:
                    failures = job.failures
                    delay = max(c.retry_after, 0.0)
                    when: datetime | None = now + timedelta(seconds=delay)
                    if when is not None and when > first + policy.give_up_after:
                        when = None
                else:
                    failures = job.failures + 1
                    when = policy.next_attempt(failures, first, now, c.retry_after)
                if outcome == Outcome.THROTTLED and when is not None:
                    # The flow slows down: nothing more goes out before the downstream's time.
                    self.throttled_until[flow.name] = max(
                        when, self.throttled_until.get(flow.name, now)
                    )
                update.update(failures=failures, first_failure_at=first, last_error=c.detail)
                if when is None:
                    update.update(status=Status.DEAD, reason=DeadReason.GAVE_UP)
                    plan.events.append(
                        (
                            "delivery_gave_up",
                            {"delivery": job.id, "detail": c.detail},
                            flow.target,
                            flow.name,
                        )
                    )
                else:
                    update.update(status=Status.PENDING, next_at=when)
            plan.updates.append(update)
            plan.update_flows.append(flow.name)
        return plan

    def _apply(self, conn: Connection, plan: Plan, now: datetime) -> None:
        holds = q.flow_holds(conn)
        for flow_name, auth_detail in plan.auth_flows.items():
            q.set_flow_hold(conn, flow_name, HoldReason.AUTH, now, "engine", auth_detail)
            q.move(
                conn,
                now,
                to_status=Status.HELD,
                to_reason=HoldReason.AUTH,
                status=Status.PENDING,
                flow=flow_name,
            )
            plan.events.append(
                (
                    "flow_held_auth",
                    {"detail": auth_detail},
                    self.flows[flow_name].target,
                    flow_name,
                )
            )
            holds[flow_name] = HoldReason.AUTH
        system_holds = self.hooks.system_holds(conn, now) if self.hooks.hold_sources else {}
        for update, flow_name in zip(plan.updates, plan.update_flows, strict=True):
            # A retry on a flow paused meanwhile, or to a system now in a window, waits there.
            if update["status"] == Status.PENDING:
                hold = holds.get(flow_name) or system_holds.get(self.flows[flow_name].target)
                if hold:
                    update.update(status=Status.HELD, reason=hold)
        q.insert_attempts(conn, plan.attempts)
        q.record_outcomes(conn, plan.updates)
        # One batch may open, close and reopen a circuit: act on where each one ended up.
        for system in dict.fromkeys([*plan.opened, *plan.closed]):
            if self.circuit(system).state == CircuitState.OPEN:
                q.move(
                    conn,
                    now,
                    to_status=Status.HELD,
                    to_reason=HoldReason.DOWNSTREAM_DOWN,
                    status=Status.PENDING,
                    system=system,
                )
            else:
                self._release_system(conn, system, holds, now)
        for circ in plan.circuits.values():
            q.save_circuit(conn, _circuit_row(circ, now))
        if plan.delivered_keys:
            self._release_blocked(conn, plan.delivered_keys, holds, now)
        for kind, detail, event_system, event_flow in plan.events:
            q.add_event(conn, now, kind, detail, event_system, event_flow)

    def _release_system(
        self, conn: Connection, system: str, holds: dict[str, str], now: datetime
    ) -> None:
        for flow in self.topology.flows_to(system):
            status, reason = placement(flow_hold=holds.get(flow.name))
            q.move(
                conn,
                now,
                to_status=status,
                to_reason=reason,
                status=Status.HELD,
                reasons=[HoldReason.DOWNSTREAM_DOWN],
                flow=flow.name,
            )

    def _release_blocked(
        self,
        conn: Connection,
        pairs: set[tuple[str, str]],
        holds: dict[str, str],
        now: datetime,
    ) -> None:
        """The next revision of each delivered key may go now."""
        rows = q.next_blocked(conn, sorted(pairs))
        groups: dict[tuple[str, str | None], list[int]] = defaultdict(list)
        for row in rows:
            circ = self.circuits.get(row.system)
            status, reason = placement(
                flow_hold=holds.get(row.flow),
                system_hold=(
                    HoldReason.DOWNSTREAM_DOWN
                    if circ is not None and circ.state == CircuitState.OPEN
                    else None
                ),
            )
            groups[(status, reason)].append(row.id)
        for (to_status, to_reason), ids in groups.items():
            q.set_state(conn, ids, to_status, to_reason, now)

    async def record(self, sent: list[Sent]) -> None:
        if not sent:
            return
        now = self.clock.now()
        plan = self.plan(sent, now)
        await self.store.write(lambda conn: self._apply(conn, plan, now))
        if plan.events and self.hooks.event_listeners:
            events = [
                {"at": now, "kind": kind, "detail": detail, "system": system, "flow": flow}
                for kind, detail, system, flow in plan.events
            ]
            for listener in self.hooks.event_listeners:
                try:
                    listener(events)
                except Exception:  # an alerting bug must never stop deliveries
                    log.exception("event listener failed")

    # -- driving ---------------------------------------------------------------------------

    async def step(self) -> int:
        """One cycle: claim what is due, send it all, record every outcome. For tests and tools."""
        jobs = await self.claim()
        if not jobs:
            return 0
        sent = await asyncio.gather(*(self.send(job) for job in jobs))
        await self.record(list(sent))
        return len(jobs)

    async def drain(self, max_steps: int = 10_000) -> int:
        """Step until nothing is due now; returns how many sends were made."""
        total = 0
        for _ in range(max_steps):
            n = await self.step()
            if n == 0:
                return total
            total += n
        return total

    async def run(self, stop: asyncio.Event, idle: float = 0.25) -> None:
        """The pipelined loop: claims ahead into per-flow buffers, starts sends as limits
        allow, and group-commits outcomes, so the store sees few, large transactions."""
        self._loop = asyncio.get_running_loop()
        recorder = asyncio.create_task(self._record_loop(stop))
        stopping = asyncio.create_task(stop.wait())
        stopping.add_done_callback(lambda _: self._attention.set())
        # A fixed pool of senders fed by a queue: cheaper than a task per delivery.
        # Sized for the most this worker may ever be granted: all of every flow's concurrency.
        pool = min(1024, sum(self.topology.flow_concurrency(f) for f in self.flows.values()) or 1)
        senders = [asyncio.create_task(self._sender()) for _ in range(pool)]
        listener = (
            asyncio.create_task(self._listen(stop)) if self.store.dialect == "postgresql" else None
        )
        buffers: dict[str, deque[Job]] = {name: deque() for name in self.flows}
        # The claim runs beside the dispatching, never in its way: while the store leases
        # the next batch, the buffers keep the senders busy (awaited in line, the senders
        # ran dry for every claim: a third of the time on PostgreSQL).
        claiming: asyncio.Task[list[Job]] | None = None
        last_claim = -1e9
        retry_at = 0.0  # after a claim failed
        found_nothing = False  # the last claim found nothing due: wait for news or a poll
        try:
            while not stop.is_set():
                if claiming is not None and claiming.done():
                    finished, claiming = claiming, None
                    try:
                        jobs = finished.result()
                    except InterlinkError as exc:
                        log.warning("claim failed, retrying: %s", exc)
                        retry_at = time.monotonic() + 1.0
                        jobs = []
                    found_nothing = not jobs
                    for job in jobs:
                        if job.probe:
                            buffers[job.flow.name].appendleft(job)
                        else:
                            buffers[job.flow.name].append(job)
                # After the claim's result: news that came while it ran may be work it missed.
                if self._wake.is_set():
                    self._wake.clear()
                    found_nothing = False
                now = self.clock.now()
                mono = time.monotonic()
                if claiming is None and mono >= retry_at:
                    want = {}
                    for name, flow in self.flows.items():
                        n = self._prefetch(flow, len(buffers[name]), now)
                        if n > 0:
                            want[name] = n
                    if (want and not found_nothing) or mono - last_claim > idle:
                        last_claim = mono
                        claiming = asyncio.create_task(self.claim(want))
                        claiming.add_done_callback(lambda _: self._attention.set())
                returned = self._dispatch(buffers, self.clock.now())
                if returned:
                    await self._return(returned)
                if any(buffers.values()):
                    # Rate-limited buffers wait for tokens: a bucket holds 20 ms of them, so look
                    # again well within that, or the bucket fills up and tokens go unused.
                    await self._nap(0.008)
                elif claiming is not None:
                    await self._nap(idle)
                else:
                    await self._nap(max(0.0, retry_at - mono) or idle)
        finally:
            if claiming is not None:
                with contextlib.suppress(InterlinkError):
                    for job in await claiming:
                        buffers[job.flow.name].append(job)
            leftovers = [job for buf in buffers.values() for job in buf]
            for _ in senders:
                self._sendq.put_nowait(None)
            await asyncio.gather(*senders, return_exceptions=True)
            if leftovers:
                with contextlib.suppress(InterlinkError):
                    await self._return(leftovers)
            self._outcome_ready.set()
            stop.set()
            await stopping
            await recorder
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener
            with contextlib.suppress(InterlinkError):
                await self.store.write(
                    lambda conn: q.retire_worker(conn, self.worker_id, self.clock.now())
                )

    async def _nap(self, timeout: float) -> None:
        """Until something needs the loop's attention, or ``timeout`` seconds."""
        if not self._attention.is_set():
            assert self._loop is not None
            alarm = self._loop.call_later(timeout, self._attention.set)
            try:
                await self._attention.wait()
            finally:
                alarm.cancel()
        self._attention.clear()

    async def _listen(self, stop: asyncio.Event) -> None:
        """Wake at once when another process commits new work (LISTEN/NOTIFY), instead of
        waiting for the next poll. Reconnects by itself when the server restarts."""
        import psycopg

        url = self.store.libpq_url()
        while not stop.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(
                    url, autocommit=True, connect_timeout=5
                ) as conn:
                    await conn.execute(f"LISTEN {q.WORK_CHANNEL}")
                    while not stop.is_set():
                        async for note in conn.notifies(timeout=1.0):
                            if note.payload == q.REGISTRY_NEWS:
                                self._registry_news = True
                            self._news()
            except (psycopg.Error, OSError) as exc:
                log.warning("listening for new work failed, polling meanwhile: %s", exc)
                await _wait(stop, 1.0)

    def _dispatch(self, buffers: dict[str, deque[Job]], now: datetime) -> list[Job]:
        """Start what the limits allow; hand back buffered jobs that may not go at all now."""
        self._settle(now)
        returned: list[Job] = []
        for name, buf in buffers.items():
            flow = self.flows[name]
            while buf and buf[0].probe:
                self._spawn(buf.popleft(), now)
            if not buf:
                continue
            if self._blocked(flow, now):
                returned.extend(buf)
                buf.clear()
                continue
            for _ in range(min(len(buf), self._capacity(flow, now))):
                self._spawn(buf.popleft(), now)
        return returned

    def _spawn(self, job: Job, now: datetime) -> None:
        self._start(job, now)
        self._sendq.put_nowait(job)

    async def _sender(self) -> None:
        while True:
            job = await self._sendq.get()
            if job is None:
                return
            await self._send_one(job)

    async def _return(self, jobs: list[Job]) -> None:
        """Give back leased, unsent jobs: to wherever their flow or system now says."""

        def write(conn: Connection) -> None:
            groups: dict[tuple[str, str | None], list[int]] = defaultdict(list)
            for job in jobs:
                circ = self.circuits.get(job.flow.target)
                status, reason = placement(
                    flow_hold=self.flow_holds.get(job.flow.name),
                    system_hold=self.system_holds.get(job.flow.target)
                    or (
                        HoldReason.DOWNSTREAM_DOWN
                        if job.probe or (circ is not None and circ.state == CircuitState.OPEN)
                        else None
                    ),
                )
                groups[(status, reason)].append(job.id)
            for (to_status, to_reason), ids in groups.items():
                q.set_state(conn, ids, to_status, to_reason, self.clock.now(), leased_only=True)

        await self.store.write(write)

    async def _send_one(self, job: Job) -> None:
        sent = await self.send(job)
        self._outcomes.append(sent)
        self._outcome_ready.set()

    async def _record_loop(self, stop: asyncio.Event) -> None:
        while True:
            await self._outcome_ready.wait()
            self._outcome_ready.clear()
            # A few milliseconds more so that one commit carries many outcomes.
            await asyncio.sleep(0.002)
            batch, self._outcomes = self._outcomes, []
            if batch:
                try:
                    await self.record(batch)
                except InterlinkError as exc:
                    # The leases will expire and the deliveries go out again; nothing is lost.
                    log.error("recording %d outcomes failed: %s", len(batch), exc)
            if stop.is_set() and not self._outcomes:
                return


def _circuit_row(circ: Circuit, now: datetime) -> dict[str, Any]:
    return {
        "system": circ.system,
        "state": str(circ.state),
        "failures": circ.failures,
        "opened_at": circ.opened_at,
        "next_probe_at": circ.next_probe_at,
        "probe_interval": circ.probe_interval.total_seconds() if circ.probe_interval else None,
        "probing": circ.probing,
        "updated_at": now,
    }


async def _wait(stop: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout)
