"""The sources' Prometheus metrics (docs/metrics.md), set by the process that polls."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge

from interlink.errors import InterlinkError

ROWS = Counter(
    "interlink_source_rows_total", "Rows a source read, by what intake made of them",
    ["source", "result"],
)  # fmt: skip
BEHIND = Gauge("interlink_source_rows_behind", "Rows (files) waiting after the cursor", ["source"])
OLDEST = Gauge(
    "interlink_source_oldest_unread_seconds",
    "Age of the oldest row waiting after the cursor (0 if none or unknown)",
    ["source"],
)
UP = Gauge("interlink_source_up", "1 if the last poll reached the upstream, else 0", ["source"])
PAUSED = Gauge("interlink_source_paused", "1 while the source is paused", ["source"])


def count_results(results: list[Any]) -> dict[str, int]:
    """Intake's answers for a batch of rows, counted as ``interlink_source_rows_total`` labels
    them: accepted, duplicate, refused."""
    counts = {"accepted": 0, "duplicate": 0, "refused": 0}
    for r in results:
        if isinstance(r, InterlinkError):
            counts["refused"] += 1
        elif r.get("duplicate"):
            counts["duplicate"] += 1
        else:
            counts["accepted"] += 1
    return counts
