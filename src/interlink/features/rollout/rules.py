"""Who is in a flow's pilot, where a document goes on each flow, and the promotion gate.

Pure over plain data: the service reads the stages and the pilot's record from the store and
asks these.

- A document is *inside* the pilot when it matches the rollout's ``when`` (if given) and its
  business key falls in ``share`` (if given). The share is by a SHA-256 of the key, never by
  Python's ``hash()`` (salted per process): a key lands in the same bucket in every process and
  every release, so its revisions never flip between paths, and raising the share from 10% to
  20% keeps the first 10% inside.
- At ``full`` every document is inside, at ``off`` none is.
- Outside, the rollout's ``outside`` decides: ``hold`` (``held: rollout``), ``skip``, or a
  fallback flow, which then takes exactly the documents its piloted flow leaves.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from interlink.config import RolloutGate, RolloutSettings
from interlink.hooks import FlowRoute, Route
from interlink.scenarios import compile_when

BUCKETS = 10_000  # a share is counted in hundredths of a percent
STAGE_NUMBER = {"off": 0, "pilot": 1, "full": 2}  # the /metrics gauge's value


def bucket(key: str) -> int:
    """The key's stable bucket, 0 to 9999."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def in_share(key: str, share: float) -> bool:
    """``key`` is among the ``share`` percent of keys (the same ones in every process)."""
    return bucket(key) < round(share * BUCKETS / 100)


@dataclass(frozen=True)
class Pilot:
    """A flow's pilot filter, compiled once."""

    when: Callable[[Any], bool] | None
    share: float | None

    @classmethod
    def of(cls, settings: RolloutSettings) -> Pilot:
        when = compile_when(settings.when) if settings.when is not None else None
        return cls(when, settings.share)

    def contains(self, key: str, payload: Any) -> bool:
        if self.when is None and self.share is None:
            return False  # a pilot of nobody (set refuses it; kept safe regardless)
        if self.when is not None and not self.when(payload):
            return False
        return self.share is None or in_share(key, self.share)


def inside(stage: str, pilot: Pilot, key: str, payload: Any) -> bool:
    """Whether a document goes out on the rolled-out flow at this stage."""
    if stage == "full":
        return True
    if stage == "off":
        return False
    return pilot.contains(key, payload)


def outside_route(settings: RolloutSettings) -> Route:
    if settings.fallback is not None:
        return Route.ROUTED
    return Route.HOLD if settings.outside == "hold" else Route.SKIP


def routes(
    settings: Mapping[str, RolloutSettings],
    stages: Mapping[str, str],
    pilots: Mapping[str, Pilot],
) -> dict[str, FlowRoute]:
    """flow → where a new document goes on it, for every rolled-out flow and every fallback.

    A fallback takes a document when any flow falling back to it leaves the document outside.
    """
    out: dict[str, FlowRoute] = {}
    fallbacks: dict[str, list[str]] = defaultdict(list)
    for flow, rollout in settings.items():
        stage, pilot, away = stages[flow], pilots[flow], outside_route(rollout)

        def route(
            key: str, payload: Any, stage: str = stage, pilot: Pilot = pilot, away: Route = away
        ) -> Route:
            return Route.DELIVER if inside(stage, pilot, key, payload) else away

        out[flow] = route
        if rollout.fallback is not None:
            fallbacks[rollout.fallback].append(flow)
    for fallback, piloted in fallbacks.items():

        def take(key: str, payload: Any, piloted: list[str] = piloted) -> Route:
            left = any(not inside(stages[f], pilots[f], key, payload) for f in piloted)
            return Route.DELIVER if left else Route.ROUTED

        out[fallback] = take
    return out


# -- the promotion gate ---------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One rule of the gate: its name, whether it holds, and why in words."""

    name: str
    passed: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def gate(rules: RolloutGate, record: Mapping[str, Any]) -> list[Check]:
    """The gate's rules over the pilot's record (see docs/rollout.md, "The promotion gate").

    ``record``: ``delivered``, ``dead`` (ints), ``pilot_seconds`` (float or None),
    ``open_incidents`` (list), ``reconciliation`` (the last run or None), ``readiness``
    (``{"passed": bool}`` or None when not installed).
    """
    checks = []
    delivered, dead = int(record["delivered"]), int(record["dead"])
    checks.append(
        Check(
            "delivered",
            delivered >= rules.min_delivered,
            f"{_plural(delivered, 'delivery')} delivered in the pilot; at least "
            f"{rules.min_delivered} needed",
        )
    )
    checks.append(
        Check(
            "dead",
            dead <= rules.max_dead,
            f"{_plural(dead, 'delivery')} dead in the pilot; at most {rules.max_dead} allowed",
        )
    )
    if rules.min_time > timedelta(0):
        seconds = record.get("pilot_seconds")
        ran = timedelta(seconds=seconds) if seconds is not None else None
        checks.append(
            Check(
                "pilot_time",
                ran is not None and ran >= rules.min_time,
                f"the pilot has run {_duration(ran) if ran is not None else 'since the start'}; "
                f"at least {_duration(rules.min_time)} needed",
            )
        )
    incidents = list(record.get("open_incidents") or [])
    checks.append(
        Check(
            "incidents",
            rules.allow_open_incidents or not incidents,
            f"{_plural(len(incidents), 'open incident')} on the flow"
            + (" (allowed)" if rules.allow_open_incidents and incidents else ""),
        )
    )
    run = record.get("reconciliation")
    if run is None:
        checks.append(
            Check(
                "reconciliation",
                not rules.require_reconciliation,
                "no reconciliation run for the flow"
                + ("; one is required" if rules.require_reconciliation else ""),
            )
        )
    else:
        clean = reconciled(run)
        checks.append(
            Check(
                "reconciliation",
                clean,
                f"last reconciliation (run {run.get('id')}) "
                + ("found no differences" if clean else "found differences or was incomplete"),
            )
        )
    ready = record.get("readiness")
    if rules.require_readiness or ready is not None:
        passed = bool(ready and ready.get("passed"))
        checks.append(
            Check(
                "readiness",
                passed or not rules.require_readiness,
                ("the go-live checklist passed" if passed else "the go-live checklist has gaps")
                + ("" if rules.require_readiness else " (not required)"),
            )
        )
    return checks


def reconciled(run: Mapping[str, Any]) -> bool:
    """A reconciliation run with no differences (timing ones aside) that read everything."""
    from interlink.features.reconcile.matching import ERRORS

    counts = run.get("categories") or {}
    return bool(run.get("complete")) and not any(counts.get(c) for c in ERRORS)


def _duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [
        f"{days}d" if days else "",
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
    ]
    return "".join(parts) or f"{seconds}s"
