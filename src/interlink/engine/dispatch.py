"""Buffers and limits: what may be sent now, and the senders that send it.

A :class:`Dispatcher` keeps this worker's share of every declared limit (granted by the
worker registry, see :mod:`.limits` and :class:`.loop.Registry`): per-flow and per-system
concurrency, per-flow and per-system token buckets, and the flows throttled by their
downstream. It decides how many to claim ahead for each flow's buffer and how many to start
now, sends (building and signing each request), and runs the fixed pool of senders the
pipelined loop feeds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from interlink import tracing
from interlink.clock import Clock
from interlink.config import Flow, Topology
from interlink.engine.circuit import Circuit
from interlink.engine.holds import Holds
from interlink.engine.limits import Limit, TokenBucket, retune
from interlink.engine.outcome import (
    Outcome,
    answer_text,
    classify_error,
    classify_response,
    local_error,
)
from interlink.engine.planner import Job, Sent
from interlink.errors import ConfigError, TransportError
from interlink.hooks import BodyMap
from interlink.metrics import LATENCY, OUTCOMES
from interlink.transports import for_system
from interlink.transports.base import MAX_RESPONSE_BODY, Request, Response, Transport
from interlink.transports.signatures import Credentials, standard_secret
from interlink.transports.signing import delivery_headers

log = logging.getLogger("interlink.engine")


def declared(topology: Topology) -> list[Limit]:
    """Every limit the workers share: each flow's concurrency (the topology's default when
    none is declared), and the declared system concurrencies and rates."""
    flows, systems = topology.flows, topology.systems
    return [
        *(
            Limit(f"slots:flow:{name}", topology.flow_concurrency(f), slots=True)
            for name, f in flows.items()
        ),
        *(
            Limit(f"slots:system:{name}", s.concurrency, slots=True)
            for name, s in systems.items()
            if s.concurrency
        ),
        *(Limit(f"rate:flow:{name}", f.rate) for name, f in flows.items() if f.rate),
        *(Limit(f"rate:system:{name}", s.rate) for name, s in systems.items() if s.rate),
    ]


class Dispatcher:
    """This worker's limits, its in-flight counts, and the sending itself."""

    def __init__(
        self,
        topology: Topology,
        clock: Clock,
        transport: Transport,
        limits: list[Limit],
        body_maps: Mapping[str, BodyMap] | None = None,
    ) -> None:
        self.topology = topology
        # flow → its mapping to the downstream's shape (hooks.body_maps), applied per request.
        self.body_maps = dict(body_maps or {})
        self.clock = clock
        self.transport = transport
        self.flows = dict(topology.flows)
        self.batch = topology.engine.batch
        self.declared = limits
        # system → its Standard Webhooks secret (drills and tests may set their own).
        self.secrets = {name: standard_secret(system) for name, system in topology.systems.items()}
        # Keys and TLS profiles loaded once, not per delivery; one that cannot be used keeps its
        # reason, and fails each of its deliveries as ours (local_error), never the engine.
        self._signers = Credentials(topology)
        # Where and how long, per flow: the same for every delivery of the flow.
        self._targets: dict[str, tuple[str, float] | str] = {}
        # A new worker holds nothing until the registry has granted it (loop.Registry).
        self.shares: dict[str, float] = {}
        self.flow_limit: dict[str, int] = {}
        self.system_limit: dict[str, int] = {}
        self.buckets: dict[str, TokenBucket] = {}
        keys = {limit.key for limit in limits}
        self._rate_keys = {
            name: [k for k in (f"rate:flow:{name}", f"rate:system:{f.target}") if k in keys]
            for name, f in self.flows.items()
        }
        self.inflight: dict[str, int] = defaultdict(int)
        self.system_inflight: dict[str, int] = defaultdict(int)
        self.throttled_until: dict[str, datetime] = {}
        # What the last claim read; the circuits are updated by each recorded batch too.
        self.circuits: dict[str, Circuit] = {}
        self.holds = Holds()
        # Is this worker's heartbeat too old to send within its shares? (loop.Registry)
        self.fenced: Callable[[datetime], bool] = lambda now: True
        self.finished: Callable[[], None] = lambda: None  # a send is over: look again
        self._latency = {name: LATENCY.labels(name) for name in self.flows}
        self._outcome_counters: dict[tuple[str, Outcome], Any] = {}
        self._sendq: asyncio.Queue[Job | None] = asyncio.Queue()
        # system → the transport its deliveries go out on: the injected one (HTTP) unless the
        # system is reached by a broker, which gets a connection of its own on first use.
        self._transports: dict[str, Transport] = {}
        # OpenTelemetry's tracer when an SDK is configured: a span per attempt (tests set theirs).
        self.tracer = tracing.tracer()

    # -- shares ---------------------------------------------------------------------------

    def use_shares(self, shares: dict[str, float], now: datetime) -> None:
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

    def in_use(self) -> dict[str, int]:
        """Slots taken now. Read from the store's thread: ``get``, never the defaultdicts'
        inserting lookup."""
        return {
            **{f"slots:flow:{name}": self.inflight.get(name, 0) for name in self.flows},
            **{
                f"slots:system:{name}": self.system_inflight.get(name, 0)
                for name in self.system_limit
            },
        }

    # -- what may go ----------------------------------------------------------------------

    def throttle(self, throttled: Mapping[str, datetime], now: datetime) -> None:
        """Flows whose downstream asked us to slow down send nothing before their time."""
        for flow, when in throttled.items():
            self.throttled_until[flow] = max(when, self.throttled_until.get(flow, now))

    def circuit_open(self, system: str) -> bool:
        found = self.circuits.get(system)
        return found is not None and found.is_open

    def blocked(self, flow: Flow, now: datetime) -> bool:
        """The flow may not send now: held, its downstream's circuit open, or throttled."""
        if flow.name in self.holds.flows or flow.target in self.holds.sources:
            return True
        if self.circuit_open(flow.target):
            return True
        until = self.throttled_until.get(flow.name)
        return until is not None and until > now

    def capacity(self, flow: Flow, now: datetime) -> int:
        """How many sends ``flow`` may start now: concurrency and rate, flow and system."""
        if self.blocked(flow, now) or self.fenced(now):
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

    def prefetch(self, flow: Flow, buffered: int, now: datetime) -> int:
        """How many more to claim ahead for ``flow``: about a second's worth, up to a batch."""
        if self.blocked(flow, now) or self.fenced(now):
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

    def start(self, job: Job, now: datetime) -> None:
        """Count ``job`` as started: a slot taken, a token spent (a probe spends none)."""
        self.inflight[job.flow.name] += 1
        self.system_inflight[job.flow.target] += 1
        if not job.probe:
            for bucket in self._buckets(job.flow) or ():
                bucket.take(now, 1)

    # -- buffers and the sender pool --------------------------------------------------------

    def dispatch(self, buffers: dict[str, deque[Job]], now: datetime) -> list[Job]:
        """Start what the limits allow; hand back buffered jobs that may not go at all now."""
        returned: list[Job] = []
        for name, buf in buffers.items():
            flow = self.flows[name]
            while buf and buf[0].probe:
                self._spawn(buf.popleft(), now)
            if not buf:
                continue
            if self.blocked(flow, now):
                returned.extend(buf)
                buf.clear()
                continue
            for _ in range(min(len(buf), self.capacity(flow, now))):
                self._spawn(buf.popleft(), now)
        return returned

    def _spawn(self, job: Job, now: datetime) -> None:
        self.start(job, now)
        self._sendq.put_nowait(job)

    def senders(self, done: Callable[[Sent], None]) -> list[asyncio.Task[None]]:
        """A fixed pool of senders fed by a queue: cheaper than a task per delivery. Sized for
        the most this worker may ever be granted: all of every flow's concurrency."""
        topology = self.topology
        pool = min(1024, sum(topology.flow_concurrency(f) for f in self.flows.values()) or 1)
        return [asyncio.create_task(self._sender(done)) for _ in range(pool)]

    def stop_senders(self, senders: list[asyncio.Task[None]]) -> Awaitable[Any]:
        for _ in senders:
            self._sendq.put_nowait(None)
        return asyncio.gather(*senders, return_exceptions=True)

    async def _sender(self, done: Callable[[Sent], None]) -> None:
        while True:
            job = await self._sendq.get()
            if job is None:
                return
            done(await self.send(job))

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
            # downstream's: the delivery goes dead and the circuit never hears of it (planner).
            classified = local_error(f"request not built: {exc}")
        else:
            try:
                response = await self._send(flow, request, job.traceparent)
            except TransportError as exc:
                classified = classify_error(exc)
                response_text = exc.message[:MAX_RESPONSE_BODY]
            except Exception as exc:  # a transport bug must not lose the delivery
                log.exception("transport failed unexpectedly")
                classified = classify_error(TransportError("protocol", str(exc)))
            else:
                status_code = response.status
                classified = classify_response(
                    response.status, response.headers, response.body, self.clock.now()
                )
                response_text = answer_text(response.body[:MAX_RESPONSE_BODY])
        elapsed = time.perf_counter() - t0
        # The request is over: its slot is free now, not once the outcome is recorded.
        self.inflight[flow.name] -= 1
        self.system_inflight[flow.target] -= 1
        self.finished()
        self._latency[flow.name].observe(elapsed)
        counter = self._outcome_counters.get((flow.name, classified.outcome))
        if counter is None:
            counter = OUTCOMES.labels(flow.name, classified.outcome.value)
            self._outcome_counters[(flow.name, classified.outcome)] = counter
        counter.inc()
        return Sent(job, started_at, elapsed * 1000, classified, status_code, response_text)

    async def _send(self, flow: Flow, request: Request, parent: str | None = None) -> Response:
        """``request`` on its transport, as one traced attempt carrying its ``traceparent``,
        in the trace of ``parent`` (its document's) when there is one."""
        headers = dict(request.headers)
        with tracing.attempt(self.tracer, flow.name, flow.target, headers, parent) as span:
            request.headers = headers
            response = await self._transport_for(flow).send(request)
            if span is not None:
                span.set_attribute("delivery.status_code", response.status)
            return response

    def _transport_for(self, flow: Flow) -> Transport:
        """The transport of ``flow``'s target: its own (a broker's, made once and reused by
        every flow into it), else the injected HTTP transport."""
        found = self._transports.get(flow.target)
        if found is None:
            found = for_system(self.topology.systems[flow.target]) or self.transport
            self._transports[flow.target] = found
        return found

    async def close_transports(self) -> None:
        """Close the systems' own transports (the injected one is its owner's to close); the
        next send opens them again."""
        own = [t for t in self._transports.values() if t is not self.transport]
        self._transports.clear()
        for transport in own:
            try:
                await transport.close()
            except Exception:  # one broken connection must not keep the others open
                log.exception("closing a transport failed")

    def _request(self, job: Job, started_at: datetime) -> Request:
        """The request for ``job``; ValueError (and kin) when it cannot be built or signed,
        ConfigError when its system has no URL."""
        flow = job.flow
        target = self._targets.get(flow.name)
        if target is None:
            target = self._targets[flow.name] = self._target(flow)
        if isinstance(target, str):
            raise ConfigError([target])
        secret = self.secrets.get(flow.target)
        signer, tls = self._signers.of(flow.name, flow.target, secret, target[0])
        url, timeout = target
        body = job.body
        body_map = self.body_maps.get(flow.name)
        if body_map is not None:
            body = body_map(body)  # ValueError: ours to fix, the delivery goes dead
        return Request(
            url=url,
            body=body,
            headers=delivery_headers(
                document_id=job.document_id,
                document_type=job.type,
                key=job.key,
                revision=job.revision,
                timestamp=int(started_at.timestamp()),
                body=body,
                secret=signer,
            ),
            timeout=timeout,
            tls=tls,
            checked=True,  # delivery_headers checked every value it put in
        )

    def _target(self, flow: Flow) -> tuple[str, float] | str:
        """The flow's URL and timeout, or why it has none."""
        try:
            url = self.topology.downstream_url(flow)
        except ConfigError as error:
            return "; ".join(error.problems)
        return url, self.topology.systems[flow.target].timeout.total_seconds()
