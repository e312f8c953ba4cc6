"""The rollout gauges at ``/metrics``: each rolled-out flow's stage and the share of keys it
delivers to now, read from the store at scrape time (docs/metrics.md)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from interlink.features.rollout.rules import STAGE_NUMBER

if TYPE_CHECKING:
    from interlink.features.rollout.service import Rollout

log = logging.getLogger("interlink.metrics")

STAGE_HELP = "A rolled-out flow's stage: 0 off, 1 pilot, 2 full"
SHARE_HELP = (
    "Share of business keys a rolled-out flow delivers to now: its pilot's share (0-1) at "
    "pilot, 1 at full, 0 at off; absent when a matcher chooses the pilot"
)


class RolloutCollector(Collector):
    def __init__(self, service: Rollout) -> None:
        self.service = service

    def describe(self) -> list[Metric]:
        return []  # not read at registration: the store is asked only when scraped

    def collect(self) -> Iterator[Metric]:
        try:
            stages = self.service.stages()
        except Exception:  # a scrape must answer even when the store does not
            log.exception("reading the rollout stages failed")
            return
        stage = GaugeMetricFamily("interlink_rollout_stage", STAGE_HELP, labels=["flow"])
        share = GaugeMetricFamily("interlink_rollout_pilot_share", SHARE_HELP, labels=["flow"])
        for flow, settings in sorted(self.service.settings.items()):
            now = stages[flow]
            stage.add_metric([flow], STAGE_NUMBER[now])
            if now != "pilot":
                share.add_metric([flow], 1.0 if now == "full" else 0.0)
            elif settings.share is not None and settings.when is None:
                share.add_metric([flow], settings.share / 100)
        yield from (stage, share)
