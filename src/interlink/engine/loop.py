"""The delivery engine: claim → send → record, and the loop that pipelines it.

One :class:`Engine` per worker process. It composes the parts:

- :class:`Registry` (here): the heartbeat, and this worker's share of every declared limit,
  settled with the store's worker registry (:mod:`.limits`).
- :class:`~interlink.engine.dispatch.Dispatcher`: buffers, limits, the sender pool, sending.
- :func:`~interlink.engine.planner.plan`: what a batch of outcomes does (pure).
- :mod:`.applier`: the store side, one write per claim and per recorded batch.

``step()`` runs one claim-send-record cycle and returns; tests drive it with a fake clock.
``run()`` is the pipelined loop that ``serve`` and ``worker`` use, woken by LISTEN/NOTIFY.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from datetime import datetime, timedelta

from sqlalchemy import Connection

from interlink.clock import Clock
from interlink.config import Topology
from interlink.engine import applier, planner
from interlink.engine.circuit import Circuit, CircuitPolicy
from interlink.engine.dispatch import Dispatcher, declared
from interlink.engine.holds import Holds
from interlink.engine.limits import (
    FENCE,
    HEARTBEAT,
    LIVE,
    SETTLE,
    Limit,
    grants,
    settled_at,
    targets,
)
from interlink.engine.planner import Job, Sent
from interlink.engine.retry import RetryPolicy
from interlink.errors import InterlinkError
from interlink.hooks import Hooks
from interlink.metrics import CIRCUIT
from interlink.store.db import Store
from interlink.store.queries import events, workers
from interlink.transports.base import Transport

log = logging.getLogger("interlink.engine")

# Outcomes are group-committed: the recorder waits up to RECORD_WAIT seconds after the first
# one for RECORD_BATCH of them. A commit writes its pages whatever it carries, so larger ones
# cost the writer less per delivery (bench/cost.py: at 60 outcomes a commit the SQLite writer
# spent ~60 µs a delivery, at 250+ ~40). Deliveries are answered by then: waiting holds no
# send slot, only the lease, and a successor's release by a few milliseconds.
RECORD_WAIT = 0.010
RECORD_BATCH = 256
# Between full claims (lapsed leases, circuits, housekeepers, holds re-read), a claim for new
# work only leases: at most this long of the engine's clock, unless something else changed.
HOUSEKEEP_EVERY = timedelta(milliseconds=50)


class Registry:
    """This worker in the store's worker registry: its heartbeat, and the shares of every
    declared limit it may send within (granted so that all workers together keep to the
    topology, see engine.limits). A new worker holds nothing until the registry grants it."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        worker_id: str,
        limits: list[Limit],
        dispatcher: Dispatcher,
    ) -> None:
        self.store = store
        self.clock = clock
        self.worker_id = worker_id
        self.declared = limits
        self.dispatcher = dispatcher
        self.published: dict[str, float] = {}  # what the registry says it holds (>= shares)
        self._pending: tuple[datetime, dict[str, float]] | None = None  # granted, usable at
        # Below its fair part: look at the registry more often, as the others shrink.
        self._settling = True
        # Slots still published for requests in flight that another worker waits for: give
        # them back as soon as those requests are over.
        self._owing = False
        self.news = False  # another worker asked everyone to look at the registry
        self._confirmed_at: datetime | None = None  # the last heartbeat the store has

    def fenced(self, now: datetime) -> bool:
        """No heartbeat for FENCE seconds: the others may soon take this worker's shares."""
        confirmed = self._confirmed_at
        return confirmed is None or (now - confirmed).total_seconds() > FENCE

    def due(self, now: datetime) -> bool:
        if self._confirmed_at is None or self.news:
            return True
        elapsed = (now - self._confirmed_at).total_seconds()
        if self._owing:
            return elapsed >= HEARTBEAT / 20
        return elapsed >= (HEARTBEAT / 4 if self._settling else HEARTBEAT)

    async def register(self, now: datetime) -> None:
        """Renew the heartbeat and settle this worker's shares with the registry: lower
        them here first, publish after; take more only by publishing it (engine.limits)."""
        self.news = False
        shares = self.dispatcher
        reset = self.fenced(now)
        if reset:
            # New, or its heartbeat lapsed and the others may have taken what it held.
            self._pending = None
            shares.use_shares({}, now)
        rows = await self.store.write(lambda conn: self._heartbeat(conn, now, reset))
        self._confirmed_at = now
        if reset:
            self.published = {}
        want = targets(self.declared, self.worker_id, {r.id: r.shares for r in rows if r.live})
        self._pending = None
        shares.use_shares(
            {key: min(part, shares.shares.get(key, 0.0)) for key, part in want.items()},
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
        shares.use_shares(
            {
                key: min(part, shares.shares.get(key, 0.0))
                if key in rates and usable > now
                else part
                for key, part in granted.items()
            },
            now,
        )
        if usable > now and any(granted[k] > shares.shares.get(k, 0.0) for k in rates):
            self._settling = True
            self._pending = (usable, granted)

    def _heartbeat(self, conn: Connection, now: datetime, reset: bool) -> list[workers.Registered]:
        workers.heartbeat(conn, self.worker_id, now, LIVE, reset)
        if reset:
            events.notify_registry(conn)  # the others shrink to make room now, not at their next
        return workers.registry(conn, now, LIVE, SETTLE)

    def _publish(
        self, conn: Connection, want: dict[str, float]
    ) -> tuple[dict[str, float], dict[str, float], list[datetime | None]]:
        """Under the registry's lock: take what the others leave of ``want``; publish it."""
        now = self.clock.now()
        rows = workers.registry(conn, now, LIVE, SETTLE)
        granted = grants(
            self.declared, want, self.worker_id, {r.id: r.shares for r in rows if r.live}
        )
        # A slot taken by a request still in flight stays published until it is over.
        published = dict(granted)
        for key, busy in self.dispatcher.in_use().items():
            published[key] = max(published.get(key, 0.0), float(busy))
        shrank = any(published.get(key, 0.0) < held for key, held in self.published.items())
        # Only a rate given back needs to settle before another worker takes it (a slot is
        # given back only once its request is over).
        released = any(
            published.get(limit.key, 0.0) < self.published.get(limit.key, 0.0)
            for limit in self.declared
            if not limit.slots
        )
        workers.publish_shares(conn, self.worker_id, published, now if released else None)
        if shrank:
            events.notify_registry(conn)  # room made: a worker waiting for it takes it now
        return granted, published, [r.released_at for r in rows if r.id != self.worker_id]

    def settle(self, now: datetime) -> bool:
        """Shares granted earlier become usable once what others released has settled;
        True when they did (claim for the new share)."""
        if self._pending is not None and now >= self._pending[0]:
            granted = self._pending[1]
            self._pending = None
            self.dispatcher.use_shares(granted, now)
            return True
        return False

    async def retire(self) -> None:
        await self.store.write(
            lambda conn: workers.retire_worker(conn, self.worker_id, self.clock.now())
        )


class Engine:
    """One worker: claims due deliveries under a lease, sends them within its limits, and
    records the outcomes of many sends in one write (group commit)."""

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
        self.store = store
        self.clock = clock
        self.worker_id = worker_id or f"{os.uname().nodename}:{os.getpid()}"
        settings = topology.engine
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
        limits = declared(topology)
        self.dispatcher = Dispatcher(
            topology, clock, transport, limits, body_maps=self.hooks.body_maps
        )
        self.secrets = self.dispatcher.secrets  # system → signing secret (drills set their own)
        self.registry = Registry(store, clock, self.worker_id, limits, self.dispatcher)
        self.dispatcher.fenced = self.registry.fenced
        self.dispatcher.finished = self._attention_set
        self._swept_at: datetime | None = None
        self._housekept_at: datetime | None = None
        self._stale = True  # the next claim re-reads circuits and holds (wake)
        self._outcomes: list[Sent] = []
        # New work announced (wake(), LISTEN/NOTIFY): claim now rather than at the next poll.
        self._wake = asyncio.Event()
        # Something the dispatching loop waits for happened: a send finished, a claim came
        # back, news, stop. One event, so that each turn of the loop waits on one thing.
        self._attention = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._outcome_ready = asyncio.Event()

    def _attention_set(self) -> None:
        self._attention.set()

    def wake(self, new_work: bool = False) -> None:
        """Something changed: claim now rather than at the next poll. Safe from any thread.

        ``new_work`` when only new deliveries arrived (a submission): the next claim may
        skip re-reading circuits and holds (see :data:`HOUSEKEEP_EVERY`). Anything else (a
        pause, a window, a re-push) makes the next claim a full one.
        """
        if not new_work:
            self._stale = True
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._news)

    def _news(self) -> None:
        self._wake.set()
        self._attention.set()

    def _settle(self, now: datetime) -> None:
        if self.registry.settle(now):
            self._wake.set()  # the run loop: claim for the new share

    # -- claim, send, record ----------------------------------------------------------------

    async def claim(self, want: dict[str, int] | None = None) -> list[Job]:
        """Lease due deliveries. Without ``want``, as many as may be sent right now, counted
        as started; with it, that many per flow to buffer (the pipelined loop)."""
        now = self.clock.now()
        self._settle(now)
        if self.registry.due(now):
            await self.registry.register(now)
        sweep = self._swept_at is None or (now - self._swept_at).total_seconds() >= HEARTBEAT
        if sweep:
            self._swept_at = now
        dispatcher = self.dispatcher
        known = None
        last = self._housekept_at
        if (
            want is None
            or sweep
            or self._stale
            or last is None
            or not (last <= now < last + HOUSEKEEP_EVERY)
        ):
            self._stale = False  # before the write: a change during it counts for the next
            self._housekept_at = now
        else:
            known = dispatcher.holds.with_open(applier.open_systems(dispatcher.circuits))

        def on_read(circuits: dict[str, Circuit], holds: Holds) -> None:
            dispatcher.circuits.update(circuits)
            dispatcher.holds = holds

        claimed = await self.store.write(
            lambda conn: applier.claim(
                conn,
                now,
                topology=self.topology,
                flows=self.flows,
                hooks=self.hooks,
                policy=self.policy,
                lease=self.lease,
                limit=(
                    (lambda flow: dispatcher.capacity(flow, now))
                    if want is None
                    else (lambda flow: want.get(flow.name, 0))
                ),
                on_read=on_read,
                sweep=sweep,
                known=known,
            )
        )
        if want is None:
            for job in claimed.jobs:
                dispatcher.start(job, now)
        return claimed.jobs

    async def send(self, job: Job) -> Sent:
        return await self.dispatcher.send(job)

    async def record(self, sent: list[Sent]) -> None:
        """Plan the outcomes, apply the plan's throttles and metrics, and write it."""
        if not sent:
            return
        now = self.clock.now()
        dispatcher = self.dispatcher
        plan = planner.plan(
            sent,
            now,
            circuits=dispatcher.circuits,
            policy=self.policy,
            retry=self.retry,
            flow_holds=dispatcher.holds.flows,
        )
        dispatcher.circuits.update(plan.circuits)
        dispatcher.throttle(plan.throttled, now)
        for system, transition in plan.transitions:
            CIRCUIT.labels(system, transition.value).inc()
        circuits = dispatcher.circuits
        await self.store.write(
            lambda conn: applier.apply(
                conn, plan, now, topology=self.topology, hooks=self.hooks, breakers=circuits
            )
        )
        if plan.events and self.hooks.event_listeners:
            events = [e.as_dict(now) for e in plan.events]
            for listener in self.hooks.event_listeners:
                try:
                    listener(events)
                except Exception:  # an alerting bug must never stop deliveries
                    log.exception("event listener failed")

    async def _give_back(self, jobs: list[Job]) -> None:
        """Leased, unsent jobs: to wherever their flow or system now says."""
        d = self.dispatcher
        holds = d.holds.with_open(applier.open_systems(d.circuits))
        await self.store.write(lambda conn: applier.give_back(conn, jobs, holds, self.clock.now()))

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
        dispatcher = self.dispatcher
        recorder = asyncio.create_task(self._record_loop(stop))
        stopping = asyncio.create_task(stop.wait())
        stopping.add_done_callback(lambda _: self._attention.set())
        senders = dispatcher.senders(self._sent)
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
                        n = dispatcher.prefetch(flow, len(buffers[name]), now)
                        if n > 0:
                            want[name] = n
                    if (want and not found_nothing) or mono - last_claim > idle:
                        last_claim = mono
                        claiming = asyncio.create_task(self.claim(want))
                        claiming.add_done_callback(lambda _: self._attention.set())
                now = self.clock.now()
                self._settle(now)
                returned = dispatcher.dispatch(buffers, now)
                if returned:
                    await self._give_back(returned)
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
            await dispatcher.stop_senders(senders)
            # The brokers' connections go with the loop; the hub closes the injected transport.
            await dispatcher.close_transports()
            if leftovers:
                with contextlib.suppress(InterlinkError):
                    await self._give_back(leftovers)
            self._outcome_ready.set()
            stop.set()
            await stopping
            await recorder
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener
            with contextlib.suppress(InterlinkError):
                await self.registry.retire()

    def _sent(self, sent: Sent) -> None:
        self._outcomes.append(sent)
        self._outcome_ready.set()

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
                    await conn.execute(f"LISTEN {events.WORK_CHANNEL}")
                    while not stop.is_set():
                        async for note in conn.notifies(timeout=1.0):
                            if note.payload == events.REGISTRY_NEWS:
                                self.registry.news = True
                            self._stale = True  # another process: anything may have changed
                            self._news()
            except (psycopg.Error, OSError) as exc:
                log.warning("listening for new work failed, polling meanwhile: %s", exc)
                await _wait(stop, 1.0)

    async def _record_loop(self, stop: asyncio.Event) -> None:
        while True:
            await self._outcome_ready.wait()
            self._outcome_ready.clear()
            # A few milliseconds more so that one commit carries many outcomes.
            waited = 0.0
            while len(self._outcomes) < RECORD_BATCH and waited < RECORD_WAIT:
                if stop.is_set():
                    break
                await asyncio.sleep(0.002)
                waited += 0.002
            batch, self._outcomes = self._outcomes, []
            if batch:
                try:
                    await self.record(batch)
                except InterlinkError as exc:
                    # The leases will expire and the deliveries go out again; nothing is lost.
                    log.error("recording %d outcomes failed: %s", len(batch), exc)
            if stop.is_set() and not self._outcomes:
                return


async def _wait(stop: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout)
