"""Deadline escalation: undelivered documents whose deadline is near ("at risk") or past
("missed"), reported once per delivery, grouped into one event per flow and check.

The pure part (:func:`stage`, :func:`why`, :func:`plan_reports`) decides; :class:`DeadlineWatch`
runs it as a housekeeper inside the engine's claim transaction, at most every
:data:`CHECK_EVERY` of clock time, on an indexed query (flow, status, deadline).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from interlink.config import Topology
from interlink.features.deadlines import queries
from interlink.model import Status
from interlink.store.queries import events

if TYPE_CHECKING:
    from interlink.service import Hub

CHECK_EVERY = timedelta(seconds=5)
SAMPLE = 20

log = logging.getLogger(__name__)

AT_RISK = "deadline_at_risk"
MISSED = "deadline_missed"


def stage(deadline: datetime, now: datetime, lead: timedelta) -> str | None:
    """``missed`` at or after the deadline, ``at_risk`` within ``lead`` of it, else None."""
    if now >= deadline:
        return MISSED
    if now >= deadline - lead:
        return AT_RISK
    return None


def why(status: str, reason: str | None, failures: int = 0, last_error: str | None = None) -> str:
    """Why an undelivered delivery is not there yet, in words for people."""
    if status == Status.HELD:
        return f"held: {reason}"
    if status == Status.DEAD:
        return f"dead: {reason}"
    if status == Status.IN_FLIGHT:
        return "sending"
    if failures:
        return f"retrying after {failures} failure(s)" + (f": {last_error}" if last_error else "")
    return "queued"


@dataclass
class Report:
    """What one check found for one flow."""

    at_risk: list[dict[str, Any]] = field(default_factory=list)
    missed: list[dict[str, Any]] = field(default_factory=list)
    new_at_risk: list[int] = field(default_factory=list)
    new_missed: list[int] = field(default_factory=list)
    known_missed: list[int] = field(default_factory=list)


def plan_reports(rows: Iterable[Any], now: datetime, lead: timedelta, tz: tzinfo) -> Report:
    """Sort candidate rows (delivery with its report flags) into what to report now.

    A delivery first seen after its deadline is reported missed only (an at-risk message
    about something already late says nothing new)."""
    report = Report()
    for row in rows:
        found = stage(row.deadline, now, lead)
        if found is None:
            continue
        item = {
            "delivery_id": row.id,
            "document_id": row.document_id,
            "key": row.key,
            "deadline": row.deadline.isoformat(),
            "deadline_local": row.deadline.astimezone(tz).isoformat(),
            "status": row.status,
            "reason": why(row.status, row.reason, row.failures, row.last_error),
        }
        reported_risk = row.at_risk_at is not None
        if found == MISSED:
            if row.missed_at is not None:
                continue
            report.missed.append(item)
            (report.known_missed if reported_risk else report.new_missed).append(row.id)
        elif not reported_risk:
            report.at_risk.append(item)
            report.new_at_risk.append(row.id)
    return report


def event_detail(flow: Any, items: list[dict[str, Any]], lead: timedelta) -> dict[str, Any]:
    reasons: dict[str, int] = {}
    for item in items:
        reasons[item["reason"]] = reasons.get(item["reason"], 0) + 1
    return {
        "flow": flow.name,
        "from": flow.source,
        "to": flow.target,
        "total": len(items),
        "reasons": reasons,
        "lead_seconds": lead.total_seconds(),
        "documents": items[:SAMPLE],
    }


class DeadlineWatch:
    """The housekeeper that writes ``deadline_at_risk`` and ``deadline_missed``."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self.lead = topology.alerts.deadline_warning
        self.flows = [
            f
            for f in topology.flows.values()
            if (doc := topology.documents.get(f.document)) is not None and doc.deadline
        ]
        self._next_check: datetime | None = None

    def housekeeper(self, conn: Connection, now: datetime) -> None:
        if not self.flows:
            return
        if self._next_check is not None and now < self._next_check:
            return
        self._next_check = now + CHECK_EVERY
        try:
            with conn.begin_nested():  # a failure here must not stop the engine's claim
                self.check(conn, now)
        except Exception:
            log.exception("deadline check failed; retrying at the next check")

    def check(self, conn: Connection, now: datetime) -> int:
        """Report what is due now; returns how many events were written."""
        written = 0
        tz = self.topology.tz
        for flow in self.flows:
            rows = queries.deadline_candidates(conn, flow.name, now, now + self.lead)
            if not rows:
                continue
            report = plan_reports(rows, now, self.lead, tz)
            for kind, items in ((AT_RISK, report.at_risk), (MISSED, report.missed)):
                if items:
                    detail = event_detail(flow, items, self.lead)
                    events.add_event(conn, now, kind, detail, flow.target, flow.name)
                    written += 1
            queries.save_reports(
                conn, now, report.new_at_risk, report.new_missed, report.known_missed
            )
        return written


NAME = "deadlines"


def install(hub: Hub) -> None:
    watch = DeadlineWatch(hub.topology)
    hub.capabilities[NAME] = watch
    hub.hooks.housekeepers.append(watch.housekeeper)


def deadlines(hub: Hub) -> DeadlineWatch:
    watch: DeadlineWatch = hub.capabilities[NAME]
    return watch
