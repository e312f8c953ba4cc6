"""Maintenance windows: announce, check, list and cancel them; hold a system's deliveries while
one is open, release them when it ends, and report the drain.

:class:`Maintenance` is the service the API, the CLI and the console call. Its
:meth:`~Maintenance.hold_source` names the systems in a window (the engine claims and probes
nothing for them; intake places new deliveries ``held: maintenance``), and its
:meth:`~Maintenance.housekeeper` moves deliveries in and out of that hold and writes the
window's events, each once (a timestamp column per event, set with the event):

``maintenance_announced``, ``maintenance_reminder``, ``maintenance_started``,
``maintenance_ended``, ``maintenance_drained``, ``maintenance_cancelled``.

Windows are cached in memory and re-read when this process changes one, or every
:data:`REFRESH` of clock time (another process may have added one).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import socket
import threading
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from interlink.config import System, Topology, parse_duration
from interlink.engine.applier import load_holds, release_system
from interlink.errors import InputError, NotFound
from interlink.features.maintenance import queries
from interlink.features.maintenance import windows as wa
from interlink.features.maintenance.windows import Window
from interlink.model import HoldReason, Status
from interlink.store.queries import audit, events, transitions

if TYPE_CHECKING:
    from interlink.service import Hub

REMINDER_ENV = "INTERLINK_MAINTENANCE_REMINDER"
DEFAULT_REMINDER = timedelta(hours=1)
REFRESH = timedelta(seconds=5)
DRAIN_CHECK = timedelta(seconds=2)
# After this long, the drain report says what is still waiting instead of waiting longer.
DRAIN_REPORT_AFTER = timedelta(hours=1)
TRAFFIC_DAYS = 28
SAMPLE = 20

log = logging.getLogger(__name__)


def receives(system: System) -> bool:
    """Whether Interlink delivers to ``system``, by whatever transport: an HTTP system with a
    url, or one reached by files or a message broker."""
    return bool(system.url) or system.transport != "http"


def downstreams(topology: Topology) -> list[str]:
    """The systems a maintenance window can be announced for."""
    return [name for name, system in topology.systems.items() if receives(system)]


def reminder_lead(value: str | None = None) -> timedelta:
    """How long before a window starts its reminder goes out: ``$INTERLINK_MAINTENANCE_REMINDER``
    (e.g. ``30m``) or one hour."""
    text = value if value is not None else os.environ.get(REMINDER_ENV)
    if not text:
        return DEFAULT_REMINDER
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise InputError(f"{REMINDER_ENV}: {exc}") from None


class Maintenance:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.topology = hub.topology
        self.tz = hub.topology.tz
        self.reminder = reminder_lead()
        self._cache: dict[int, Window] = {}
        self._loaded_at: datetime | None = None
        self._stale = True
        self._next_drain_check: dict[int, datetime] = {}
        self._retry_at: dict[int, datetime] = {}
        self._lock = threading.Lock()

    # -- reading ----------------------------------------------------------------------------

    def windows(self, include_all: bool = False) -> list[dict[str, Any]]:
        """Upcoming and open windows (every window with ``include_all``), by start."""
        now = self.hub.clock.now()
        found = self.hub.store.read_sync(lambda conn: queries.list_windows(conn))
        if not include_all:
            found = [w for w in found if not w.cancelled and w.end > now]
        return [self._json(w, now) for w in found]

    def window(self, window_id: int) -> dict[str, Any]:
        found = self.hub.store.read_sync(lambda conn: queries.get_window(conn, window_id))
        if found is None:
            raise NotFound(f"no maintenance window {window_id}")
        return self._json(found, self.hub.clock.now())

    def active(self, now: datetime | None = None) -> dict[str, dict[str, Any]]:
        """system → its open window (id, start, end, reason, short_notice), for status."""
        now = now or self.hub.clock.now()
        found = self.hub.store.read_sync(lambda conn: queries.list_windows(conn, since=now))
        return {
            w.system: {
                "id": w.id,
                "start": w.start.isoformat(),
                "end": w.end.isoformat(),
                "reason": w.reason,
                "short_notice": w.short_notice,
            }
            for w in found
            if w.active(now)
        }

    def ics(self) -> str:
        now = self.hub.clock.now()
        found = self.hub.store.read_sync(lambda conn: queries.list_windows(conn))
        flows_of = {
            name: [f.name for f in self.topology.flows_to(name)] for name in self.topology.systems
        }
        host = socket.gethostname() or "interlink"
        return wa.ical(found, now, host, flows_of, self.tz, self.other_entries())

    def other_entries(self) -> list[dict[str, Any]]:
        """What other features put on the calendar: their ``calendar_entries`` section, given
        the hub. Read from the features the hub was given, since the registry that lists
        them also lists this feature (importing it would be a cycle)."""
        found: list[dict[str, Any]] = []
        for feature in self.hub.features:
            sections = getattr(feature, "sections", None)
            if sections is None or feature.name not in self.hub.capabilities:
                continue
            contribute = sections().get("calendar_entries")
            if contribute is not None:
                found += contribute(self.hub)
        return found

    def _json(self, w: Window, now: datetime) -> dict[str, Any]:
        data = wa.window_json(w, now, self.tz)
        data["affected_flows"] = self.affected_flows(w.system)
        return data

    def affected_flows(self, system: str) -> list[dict[str, Any]]:
        return [
            {"flow": f.name, "from": f.source, "document": f.document}
            for f in self.topology.flows_to(system)
        ]

    # -- checking ---------------------------------------------------------------------------

    def _system(self, name: str) -> Any:
        system = self.topology.systems.get(name)
        if system is None:
            known = ", ".join(sorted(downstreams(self.topology)))
            raise InputError(f"unknown system {name!r} (downstream systems: {known or 'none'})")
        if not receives(system):
            raise InputError(
                f"system {name!r} has no url: it receives nothing from Interlink, so there is "
                "nothing to hold during its maintenance"
            )
        return system

    def _validate(
        self, system_name: str, start: datetime, end: datetime, reason: str, now: datetime
    ) -> Any:
        system = self._system(system_name)
        if not reason.strip():
            raise InputError("give a reason for the window (who and why), e.g. 'release 4.2'")
        problem = wa.impossible(start, end, now)
        if problem:
            raise InputError(
                f"cannot announce a window from {self._local(start)} to {self._local(end)}: "
                f"{problem}"
            )
        return system

    def _local(self, when: datetime) -> str:
        return when.astimezone(self.tz).strftime("%Y-%m-%d %H:%M %Z")

    def checks(
        self,
        conn: Connection,
        system_name: str,
        start: datetime,
        end: datetime,
        force: bool,
        now: datetime,
    ) -> dict[str, Any]:
        """Everything known about a proposed window: what refuses it, what to warn about,
        the expected backlog and the deadlines that fall inside it."""
        system = self.topology.systems[system_name]
        errors: list[str] = []
        needs_force: list[str] = []
        warnings: list[str] = []
        for other in queries.overlapping(conn, system_name, start, end):
            errors.append(
                f"overlaps window {other.id} of {system_name} "
                f"({self._local(other.start)} to {self._local(other.end)}: {other.reason})"
            )
        missing = wa.short_of_notice(start, now, system.maintenance_notice)
        notice = {
            "required_seconds": (
                system.maintenance_notice.total_seconds() if system.maintenance_notice else None
            ),
            "given_seconds": max(0.0, (start - now).total_seconds()),
            "short": missing is not None,
        }
        if missing is not None:
            needs_force.append(
                f"short notice: {system_name} asks for {_span(system.maintenance_notice)} of "
                f"notice and this window starts in {_span(start - now)}"
            )
        peaks = wa.peak_intervals(system.peak_hours, self.tz, start, end)
        if peaks:
            entries = sorted({p[0] for p in peaks})
            needs_force.append(
                f"overlaps {system_name}'s declared peak hours ({', '.join(entries)}), first "
                f"{self._local(peaks[0][1])} to {self._local(peaks[0][2])}"
            )
        per_flow, hist, weeks = self._traffic(conn, system_name, now)
        busy = wa.busy_overlap(hist, start, end, self.tz)
        if busy:
            warnings.append(
                "overlaps the busiest hours observed in the last 28 days: "
                + ", ".join(wa.describe_hour(h) for h in busy)
            )
        earliest = max(now + (system.maintenance_notice or timedelta(0)), now)
        # An allowed slot: after the notice, outside peaks and the system's other windows;
        # this week if one fits, else the next (a refusal late in the week still gets one).
        horizon = wa.week_start(start, self.tz) + timedelta(days=15)
        taken = [(w.start, w.end) for w in queries.overlapping(conn, system_name, now, horizon)]
        slot = None
        for span in (1, 2):
            slot = wa.quietest_slot(
                hist, start, end, self.tz, system.peak_hours, earliest, taken, span
            )
            if slot is not None:
                break
        quietest = None
        if slot is not None:
            s_start, s_end, expected = slot
            quietest = {
                "start": s_start.isoformat(),
                "end": s_end.isoformat(),
                "start_local": s_start.astimezone(self.tz).isoformat(),
                "end_local": s_end.astimezone(self.tz).isoformat(),
                "expected_deliveries": round(expected, 1),
            }
            if busy or peaks:
                warnings.append(
                    f"the quietest comparable slot allowed is {self._local(s_start)} to "
                    f"{self._local(s_end)} (about {round(expected)} deliveries expected)"
                )
        backlog = _backlog(
            per_flow, weeks, self.topology.flows_to(system_name), start, end, self.tz
        )
        deadlines = self._deadlines(conn, system_name, start, end)
        if deadlines["total"]:
            warnings.append(
                f"{deadlines['total']} undelivered document(s) have a deadline inside the window"
            )
        warnings = needs_force + warnings
        return {
            "system": system_name,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "start_local": start.astimezone(self.tz).isoformat(),
            "end_local": end.astimezone(self.tz).isoformat(),
            "duration_minutes": round((end - start).total_seconds() / 60, 1),
            "ok": not errors and (force or not needs_force),
            "errors": errors,
            "needs_force": needs_force,
            "warnings": warnings,
            "short_notice": missing is not None,
            "notice": notice,
            "peak_overlaps": [
                {"entry": e, "start": s.isoformat(), "end": t.isoformat()} for e, s, t in peaks
            ],
            "busy_hours": [wa.describe_hour(h) for h in busy],
            "quietest_slot": quietest,
            "affected_flows": self.affected_flows(system_name),
            "expected_backlog": backlog,
            "deadlines": deadlines,
        }

    def _traffic(
        self, conn: Connection, system: str, now: datetime
    ) -> tuple[dict[str, list[int]], list[int], float]:
        """Per-flow and per-system hour-of-week histograms of the last 28 days, and how many
        weeks of history they hold (at least one)."""
        since = now - timedelta(days=TRAFFIC_DAYS)
        rows = queries.traffic_per_hour(conn, system, since, now)
        by_flow: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
        for flow, when, count in rows:
            by_flow[flow].append((when, count))
        per_flow = {flow: wa.histogram(pairs, self.tz) for flow, pairs in by_flow.items()}
        total = wa.histogram(((w, c) for _, w, c in rows), self.tz)
        first = min((w for _, w, _ in rows), default=now)
        weeks = float(min(4, max(1, math.ceil((now - first) / timedelta(days=7)))))
        return per_flow, total, weeks

    def _backlog(
        self, conn: Connection, system: str, start: datetime, end: datetime, now: datetime
    ) -> dict[str, int]:
        per_flow, _, weeks = self._traffic(conn, system, now)
        return _backlog(per_flow, weeks, self.topology.flows_to(system), start, end, self.tz)

    def _deadlines(
        self, conn: Connection, system: str, start: datetime, end: datetime
    ) -> dict[str, Any]:
        rows, total = queries.deadlines_within(conn, system, start, end, SAMPLE)
        return {
            "total": total,
            "documents": [
                {
                    "document_id": r.document_id,
                    "delivery_id": r.id,
                    "flow": r.flow,
                    "key": r.key,
                    "deadline": r.deadline.isoformat(),
                    "deadline_local": r.deadline.astimezone(self.tz).isoformat(),
                }
                for r in rows
            ],
        }

    # -- actions ----------------------------------------------------------------------------

    def add(
        self,
        system: str,
        start: datetime,
        end: datetime,
        reason: str,
        actor: str,
        force: bool = False,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Announce a window (or, with ``dry_run``, only say what announcing it would do)."""
        now = self.hub.clock.now()
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        self._validate(system, start, end, reason, now)
        if dry_run:
            result = self.hub.store.read_sync(
                lambda conn: self.checks(conn, system, start, end, force, now)
            )
            return {"dry_run": True, **result}

        def write(conn: Connection) -> dict[str, Any]:
            found = self.checks(conn, system, start, end, force, now)
            if found["errors"]:
                raise InputError("; ".join(found["errors"]), checks=found)
            if found["needs_force"] and not force:
                raise InputError(
                    "; ".join(found["needs_force"]) + ' (use --force, or "force": true, to '
                    "announce it anyway)",
                    checks=found,
                )
            window_id = queries.insert_window(
                conn,
                {
                    "system": system,
                    "start_at": start,
                    "end_at": end,
                    "reason": reason.strip(),
                    "short_notice": found["short_notice"],
                    "created_at": now,
                    "created_by": actor,
                },
            )
            window = queries.get_window(conn, window_id)
            assert window is not None
            detail = {
                **self._detail(window),
                "warnings": found["warnings"],
                "expected_backlog": found["expected_backlog"],
                "deadlines": found["deadlines"],
                "quietest_slot": found["quietest_slot"],
                "by": actor,
            }
            events.add_event(conn, now, "maintenance_announced", detail, system)
            audit.add_audit(conn, now, actor, "maintenance_add", f"maintenance:{window_id}", detail)
            return {**self._json(window, now), "checks": found}

        result = self.hub.store.write_sync(write)
        self._stale = True
        return result

    def cancel(self, window_id: int, actor: str) -> dict[str, Any]:
        now = self.hub.clock.now()

        def write(conn: Connection) -> Window:
            window = queries.get_window(conn, window_id)
            if window is None:
                raise NotFound(f"no maintenance window {window_id}")
            if window.cancelled:
                raise InputError(f"window {window_id} is already cancelled")
            if window.end <= now:
                raise InputError(f"window {window_id} is over; there is nothing to cancel")
            queries.cancel_window(conn, window_id, now, actor)
            detail = {**self._detail(window), "by": actor, "was": window.state(now)}
            events.add_event(conn, now, "maintenance_cancelled", detail, window.system)
            audit.add_audit(
                conn, now, actor, "maintenance_cancel", f"maintenance:{window_id}", detail
            )
            found = queries.get_window(conn, window_id)
            assert found is not None
            return found

        window = self.hub.store.write_sync(write)
        self._stale = True
        self.hub._wake()
        return self._json(window, now)

    def _detail(self, w: Window) -> dict[str, Any]:
        flows = self.affected_flows(w.system)
        return {
            "window": w.id,
            "system": w.system,
            "start": w.start.isoformat(),
            "end": w.end.isoformat(),
            "start_local": w.start.astimezone(self.tz).isoformat(),
            "end_local": w.end.astimezone(self.tz).isoformat(),
            "reason": w.reason,
            "short_notice": w.short_notice,
            "affected_flows": flows,
            "upstream_systems": sorted({f["from"] for f in flows}),
        }

    # -- hooks ------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Re-read the windows at the next hook call (after a change made elsewhere)."""
        self._stale = True

    def _windows(self, conn: Connection, now: datetime) -> dict[int, Window]:
        with self._lock:
            loaded = self._loaded_at
            if self._stale or loaded is None or now < loaded or now - loaded >= REFRESH:
                self._stale = False
                self._cache = {w.id: w for w in queries.live_windows(conn)}
                self._loaded_at = now
            return self._cache

    def hold_source(self, conn: Connection, now: datetime) -> dict[str, str]:
        """Systems in an open window now → ``maintenance``."""
        return {
            w.system: HoldReason.MAINTENANCE
            for w in self._windows(conn, now).values()
            if w.active(now)
        }

    def housekeeper(self, conn: Connection, now: datetime) -> None:
        """Remind, start, end and report windows whose time has come. Only in-memory
        comparisons unless one of them is due. A failure here is logged and retried later:
        it never stops the engine's claim it runs in (its own savepoint)."""
        for window in sorted(self._windows(conn, now).values(), key=lambda w: w.start):
            if not self._due(window, now):
                continue
            retry = self._retry_at.get(window.id)
            if retry is not None and now < retry:
                continue
            try:
                with conn.begin_nested():
                    w = self._advance(conn, window, now)
            except Exception:
                log.exception("maintenance window %s: housekeeping failed", window.id)
                self._retry_at[window.id] = now + REFRESH
                continue
            self._retry_at.pop(window.id, None)
            with self._lock:
                if w.drained_at is not None:
                    self._cache.pop(w.id, None)
                    self._next_drain_check.pop(w.id, None)
                else:
                    self._cache[w.id] = w

    def _due(self, w: Window, now: datetime) -> bool:
        if not w.cancelled and w.reminded_at is None and now >= w.start - self.reminder:
            return True
        if not w.cancelled and w.started_at is None and now >= w.start:
            return True
        if w.started_at is not None and w.ended_at is None and (w.cancelled or now >= w.end):
            return True
        if w.ended_at is not None and w.drained_at is None:
            due = self._next_drain_check.get(w.id)
            return due is None or now >= due
        return False

    def _advance(self, conn: Connection, w: Window, now: datetime) -> Window:
        if not w.cancelled and w.reminded_at is None and now >= w.start - self.reminder:
            w = self._remind(conn, w, now)
        if not w.cancelled and w.started_at is None and now >= w.start:
            w = self._start(conn, w, now)
        if w.started_at is not None and w.ended_at is None and (w.cancelled or now >= w.end):
            w = self._end(conn, w, now)
        if w.ended_at is not None and w.drained_at is None:
            due = self._next_drain_check.get(w.id)
            if due is None or now >= due:
                w = self._drain(conn, w, now)
        return w

    def _remind(self, conn: Connection, w: Window, now: datetime) -> Window:
        # No reminder for a window announced inside the reminder lead: the announcement was
        # the reminder. Nor for one whose start has already passed.
        announced_late = w.created_at is not None and w.start - w.created_at <= self.reminder
        if queries.mark(conn, w.id, "reminded_at", now) and not announced_late and now < w.start:
            detail = {
                **self._detail(w),
                "starts_in_seconds": (w.start - now).total_seconds(),
                "expected_backlog": self._backlog(conn, w.system, w.start, w.end, now),
                "deadlines": self._deadlines(conn, w.system, w.start, w.end),
            }
            events.add_event(conn, now, "maintenance_reminder", detail, w.system)
        return dataclasses.replace(w, reminded_at=now)

    def _start(self, conn: Connection, w: Window, now: datetime) -> Window:
        if queries.mark(conn, w.id, "started_at", now):
            moved = transitions.move(
                conn,
                now,
                to_status=Status.HELD,
                to_reason=HoldReason.MAINTENANCE,
                status=Status.PENDING,
                system=w.system,
            )
            events.add_event(
                conn, now, "maintenance_started", {**self._detail(w), "held": moved}, w.system
            )
        return dataclasses.replace(w, started_at=now)

    def _end(self, conn: Connection, w: Window, now: datetime) -> Window:
        held = w.held_count
        if queries.mark(conn, w.id, "ended_at", now):
            held = queries.record_held(conn, w.id, w.system)
            queries.set_held_count(conn, w.id, held)
            self._release(conn, w.system, now)
            events.add_event(
                conn,
                now,
                "maintenance_ended",
                {**self._detail(w), "held": held, "cancelled": w.cancelled},
                w.system,
            )
        self._next_drain_check[w.id] = now + DRAIN_CHECK
        return dataclasses.replace(w, ended_at=now, held_count=held)

    def _release(self, conn: Connection, system: str, now: datetime) -> None:
        holds = load_holds(conn, now)  # not this feature's own holds: the window is over
        release_system(conn, self.topology, holds, system, HoldReason.MAINTENANCE, now)

    def _drain(self, conn: Connection, w: Window, now: datetime) -> Window:
        ended = w.ended_at or w.end
        if now < ended + DRAIN_REPORT_AFTER:
            # The cheap test first, the full count only once it passes.
            low, high = queries.held_bounds(conn, w.id)
            if (
                low is not None
                and high is not None
                and queries.any_waiting(conn, w.system, low, high)
            ):
                self._next_drain_check[w.id] = now + DRAIN_CHECK
                return w
        counts, last = queries.drain_state(conn, w.id)
        waiting = sum(c for s, _, c in counts if s in (Status.PENDING, Status.IN_FLIGHT))
        if waiting and now < ended + DRAIN_REPORT_AFTER:
            self._next_drain_check[w.id] = now + DRAIN_CHECK
            return w
        if not queries.mark(conn, w.id, "drained_at", now):
            return dataclasses.replace(w, drained_at=now)
        held = sum(c for _, _, c in counts)
        delivered = sum(c for s, _, c in counts if s == Status.DELIVERED)
        stuck = {(f"{s}: {r}" if r else str(s)): c for s, r, c in counts if s != Status.DELIVERED}
        by_local = last.astimezone(self.tz).strftime("%H:%M") if last else None
        if held == 0:
            summary = "nothing was held"
        elif not stuck:
            summary = f"{held} held, all delivered by {by_local}"
        else:
            parts = ", ".join(f"{c} {k}" for k, c in sorted(stuck.items()))
            summary = f"{held} held, {delivered} delivered, still stuck: {parts}"
        sample = [
            {
                "delivery_id": r.id,
                "document_id": r.document_id,
                "flow": r.flow,
                "key": r.key,
                "state": f"{r.status}: {r.reason}" if r.reason else r.status,
                "last_error": r.last_error,
            }
            for r in (queries.stuck_sample(conn, w.id, SAMPLE) if stuck else [])
        ]
        detail = {
            **self._detail(w),
            "held": held,
            "delivered": delivered,
            "delivered_by": last.isoformat() if last else None,
            "delivered_by_local": by_local,
            "drain_seconds": (last - ended).total_seconds() if last and not stuck else None,
            "stuck": stuck,
            "stuck_sample": sample,
            "summary": summary,
        }
        events.add_event(conn, now, "maintenance_drained", detail, w.system)
        return dataclasses.replace(w, drained_at=now)


def _backlog(
    per_flow: dict[str, list[int]],
    weeks: float,
    flows: list[Any],
    start: datetime,
    end: datetime,
    tz: Any,
) -> dict[str, int]:
    """flow → deliveries expected to pile up during [start, end)."""
    empty = [0] * wa.HOURS_PER_WEEK
    return {
        f.name: round(wa.expected_traffic(per_flow.get(f.name, empty), start, end, tz, weeks))
        for f in flows
    }


def _span(delta: timedelta | None) -> str:
    if delta is None:
        return "no"
    seconds = int(max(0, delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [
        f"{days}d" if days else "",
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
    ]
    return "".join(parts) or f"{seconds}s"


NAME = "maintenance"


def install(hub: Hub) -> None:
    """The window hold source (systems in an open window are held ``maintenance``), the
    window housekeeper (hold, release, remind, report the drain), and the open windows the
    hub's status shows."""
    service = Maintenance(hub)
    hub.capabilities[NAME] = service
    hub.hooks.hold_sources.append(service.hold_source)
    hub.hooks.housekeepers.append(service.housekeeper)
    hub.hooks.system_windows.append(service.active)


def maintenance(hub: Hub) -> Maintenance:
    service: Maintenance = hub.capabilities[NAME]
    return service
