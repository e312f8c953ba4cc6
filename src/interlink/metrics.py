"""Prometheus metrics, served at ``/metrics``.

Two kinds, documented in docs/metrics.md:

- counters and histograms of what this process did (intake, outcomes, latency, circuit
  transitions), kept in the process and reset when it restarts;
- gauges of the backlog as the store holds it (:class:`BacklogCollector`): pending, in flight,
  held by reason and dead per flow, the oldest pending delivery's age, circuit state and open
  maintenance windows per system. Read at scrape time with one grouped query, and kept for
  ``ttl`` seconds so that several Prometheus servers scraping the same process share a query.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from interlink.model import CircuitState, DeadReason, HoldReason, Status
from interlink.store.queries import backlog

if TYPE_CHECKING:
    from interlink.clock import Clock
    from interlink.config import Topology
    from interlink.hooks import Hooks
    from interlink.store.db import Store

log = logging.getLogger("interlink.metrics")

DOCUMENTS = Counter(
    "interlink_documents_total", "Documents accepted at intake", ["type", "source", "result"]
)
OUTCOMES = Counter(
    "interlink_delivery_outcomes_total", "Delivery attempts by outcome class", ["flow", "outcome"]
)
LATENCY = Histogram(
    "interlink_delivery_seconds",
    "Time of one delivery request to the downstream",
    ["flow"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CIRCUIT = Counter(
    "interlink_circuit_transitions_total", "Circuit breaker transitions", ["system", "to"]
)

# The gauges' names, in one place for the docs, the dashboard and the alert rules' tests.
BACKLOG_GAUGES = {
    "interlink_deliveries_pending": "Deliveries waiting to be sent, per flow",
    "interlink_deliveries_in_flight": "Deliveries leased to a worker, per flow",
    "interlink_deliveries_held": "Deliveries held, per flow and reason",
    "interlink_deliveries_dead": "Dead deliveries not re-pushed or pruned, per flow and reason",
    "interlink_oldest_pending_seconds": "Age of the oldest pending delivery per flow (0 if none)",
    "interlink_circuit_open": "1 while a downstream system's circuit is open, else 0",
    "interlink_maintenance_window_open": "1 while a system is in a maintenance window, else 0",
    "interlink_backlog_up": "1 if the backlog gauges could be read from the store, else 0",
    "interlink_backlog_query_seconds": "Time the last read of the backlog gauges took",
}


class Hub(Protocol):
    """What the gauges read from :class:`interlink.service.Hub` (named here, not imported:
    the service imports intake, which imports this module)."""

    store: Store
    topology: Topology
    clock: Clock
    hooks: Hooks


@dataclass
class Backlog:
    """One read of the store, as the gauges report it."""

    at: datetime
    pending: dict[str, int] = field(default_factory=dict)
    in_flight: dict[str, int] = field(default_factory=dict)
    held: dict[tuple[str, str], int] = field(default_factory=dict)
    dead: dict[tuple[str, str], int] = field(default_factory=dict)
    oldest_pending: dict[str, datetime] = field(default_factory=dict)
    circuits: dict[str, str] = field(default_factory=dict)
    windows: set[str] = field(default_factory=set)
    seconds: float = 0.0


def read_backlog(hub: Hub) -> Backlog:
    """The backlog from the store: one grouped query over deliveries, the circuits, and the
    systems in a window (from the features' ``system_windows`` hooks)."""
    started = time.perf_counter()
    rows, states = hub.store.read_sync(
        lambda conn: (backlog.backlog(conn), backlog.circuit_states(conn))
    )
    found = Backlog(at=hub.clock.now(), circuits=states)
    for row in rows:
        if row.status == Status.PENDING:
            found.pending[row.flow] = found.pending.get(row.flow, 0) + row.count
            if row.oldest_pending is not None:
                known = found.oldest_pending.get(row.flow)
                if known is None or row.oldest_pending < known:
                    found.oldest_pending[row.flow] = row.oldest_pending
        elif row.status == Status.IN_FLIGHT:
            found.in_flight[row.flow] = found.in_flight.get(row.flow, 0) + row.count
        else:
            into = found.held if row.status == Status.HELD else found.dead
            reason = row.reason or ""
            into[row.flow, reason] = into.get((row.flow, reason), 0) + row.count
    for source in hub.hooks.system_windows:
        found.windows.update(source())
    found.seconds = time.perf_counter() - started
    return found


class BacklogCollector(Collector):
    """The backlog gauges of one hub, read at scrape time and cached for ``ttl`` seconds of
    the hub's clock.

    Every flow and downstream system of the topology gets its series, zero included, so that
    an alert such as "held > 0 for 10 minutes" sees a series from the start. A failed read
    answers ``interlink_backlog_up 0`` instead of failing the whole scrape.
    """

    def __init__(
        self,
        hub: Hub,
        *,
        ttl: float = 5.0,
        read: Callable[[Hub], Backlog] = read_backlog,
    ) -> None:
        self.hub = hub
        self.ttl = ttl
        self._read = read
        self._lock = threading.Lock()  # concurrent scrapes wait for one read, not one each
        self._cached: Backlog | None = None

    def describe(self) -> list[Metric]:
        return []  # not read at registration: the store is asked only when scraped

    def snapshot(self) -> Backlog:
        with self._lock:
            # The hub's clock, so tests move past the cache; a clock set back reads again.
            now = self.hub.clock.now()
            cached = self._cached
            if cached is None or not 0 <= (now - cached.at).total_seconds() < self.ttl:
                cached = self._cached = self._read(self.hub)
            return cached

    def collect(self) -> Iterator[Metric]:
        try:
            found = self.snapshot()
        except Exception:  # a scrape must answer even when the store does not
            log.exception("reading the backlog gauges failed")
            up = GaugeMetricFamily("interlink_backlog_up", BACKLOG_GAUGES["interlink_backlog_up"])
            up.add_metric([], 0)
            yield up
            return
        yield from self._families(found)

    def _families(self, found: Backlog) -> Iterator[Metric]:
        topology = self.hub.topology
        flows = sorted(set(topology.flows) | set(found.pending) | set(found.in_flight))

        def gauge(name: str, labels: list[str]) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, BACKLOG_GAUGES[name], labels=labels)

        pending = gauge("interlink_deliveries_pending", ["flow"])
        in_flight = gauge("interlink_deliveries_in_flight", ["flow"])
        oldest = gauge("interlink_oldest_pending_seconds", ["flow"])
        for flow in flows:
            pending.add_metric([flow], found.pending.get(flow, 0))
            in_flight.add_metric([flow], found.in_flight.get(flow, 0))
            since = found.oldest_pending.get(flow)
            age = (found.at - since).total_seconds() if since is not None else 0.0
            oldest.add_metric([flow], max(0.0, age))
        yield from (pending, in_flight, oldest)

        for name, counts, reasons in (
            ("interlink_deliveries_held", found.held, [r.value for r in HoldReason]),
            ("interlink_deliveries_dead", found.dead, [r.value for r in DeadReason]),
        ):
            family = gauge(name, ["flow", "reason"])
            keys = {(flow, reason) for flow in topology.flows for reason in reasons} | set(counts)
            for flow, reason in sorted(keys):
                family.add_metric([flow, reason], counts.get((flow, reason), 0))
            yield family

        # Circuits and windows concern systems that receive deliveries.
        downstreams = sorted({f.target for f in topology.flows.values()} | set(found.circuits))
        circuit = gauge("interlink_circuit_open", ["system"])
        window = gauge("interlink_maintenance_window_open", ["system"])
        for system in downstreams:
            circuit.add_metric([system], found.circuits.get(system) == CircuitState.OPEN)
            window.add_metric([system], system in found.windows)
        yield from (circuit, window)

        up = gauge("interlink_backlog_up", [])
        up.add_metric([], 1)
        seconds = gauge("interlink_backlog_query_seconds", [])
        seconds.add_metric([], found.seconds)
        yield from (up, seconds)
