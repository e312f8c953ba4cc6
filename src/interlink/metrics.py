"""Prometheus metrics, served at ``/metrics``."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
