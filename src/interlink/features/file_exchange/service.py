"""File exchange: deliveries to a ``transport: file`` system go out in batch files, and come
back delivered or dead through the downstream's result files.

How it joins the core (hooks):

- a hold source names every file-exchange system ``batched``: intake places their deliveries
  ``held: batched`` (after order, pause and maintenance, which come first), and the engine
  claims and probes nothing for them;
- a background loop cuts each flow's file at its scheduled times (``schedule``) or once
  ``max_lines`` wait, sends the files not sent yet again on the flow's retry schedule, polls
  for result files, and reports a result that is missing by its deadline.

A delivery's path: ``held: batched`` → in a file (``held: awaiting_result``, the file's name
and line in ``file_lines``) → ``delivered`` (the result line is its receipt) or ``dead:
rejected`` (with the downstream's message). A file is built once, in one write that takes its
deliveries, and kept until it is sent: every retry sends the same bytes under the same name,
and a file found already there with those bytes counts as sent. So a refused or lost upload
loses nothing and sends nothing twice.

Events: ``file_send_failed``, ``file_result_missing``, ``file_result_problems`` (lines of a
result file that match nothing), and ``delivery_rejected``/``delivery_local_error`` as the
HTTP engine writes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from sqlalchemy import Connection

from interlink import tracing
from interlink.config import FileExchangeSettings, Flow
from interlink.engine.applier import load_holds
from interlink.errors import InputError, NotFound, TransportError
from interlink.features.file_exchange import fileformat, queries
from interlink.features.file_exchange.fileformat import Item
from interlink.features.file_exchange.places import Place, TooBig, place_for
from interlink.features.file_exchange.schedule import latest_cut, result_due
from interlink.model import HoldReason
from interlink.store.queries import claims, documents, events, transitions
from interlink.store.queries.deliveries import with_undelivered_predecessor

if TYPE_CHECKING:
    from interlink.service import Hub

NAME = "file_exchange"
# How often the background loop looks (real time); what it does is decided by the clock.
TICK = timedelta(seconds=15)
SAMPLE = 20

log = logging.getLogger(__name__)


class FileExchange:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.topology = hub.topology
        self.tz = hub.topology.tz
        self.systems: dict[str, FileExchangeSettings] = {
            name: s.file_exchange
            for name, s in hub.topology.systems.items()
            if s.transport == "file" and s.file_exchange is not None
        }
        self.flows: dict[str, Flow] = {
            f.name: f for f in hub.topology.flows.values() if f.target in self.systems
        }
        self._polled: dict[str, datetime] = {}
        # location → where files go; a Place put here is used instead of a new one.
        self.places: dict[str, Place] = {}
        # OpenTelemetry's tracer when an SDK is configured: a span per file put (tests set theirs).
        self.tracer = tracing.tracer()

    # -- hooks ------------------------------------------------------------------------------

    def hold_source(self, conn: Connection, now: datetime) -> dict[str, str]:
        """Every file-exchange system → ``batched``: nothing of theirs goes by the engine."""
        return dict.fromkeys(self.systems, HoldReason.BATCHED)

    async def run(self, stop: asyncio.Event) -> None:
        """The background loop: :meth:`tick` until ``stop`` is set."""
        while not stop.is_set():
            try:
                await self.tick()
            except Exception:
                log.exception("file exchange: a round failed; trying again shortly")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), TICK.total_seconds())

    async def tick(self) -> None:
        """One round at the clock's now: retries, scheduled or full files, results, deadlines."""
        now = self.hub.clock.now()
        for flow in self.flows.values():
            settings = self.systems[flow.target]
            await self._retry(flow, now)
            if await self.hub.store.read(
                partial(self._cut_due, flow=flow, settings=settings, now=now)
            ):
                await self._cut(flow, now)
        for system, settings in self.systems.items():
            spec = settings.results
            if spec is None:
                continue
            last = self._polled.get(system)
            if last is None or now >= last + spec.poll or now < last:
                self._polled[system] = now
                try:
                    await self.fetch_results(system, now=now)
                except TransportError as e:
                    log.warning("file exchange: results of %s: %s", system, e.message)
        await self.hub.store.write(lambda conn: self._report_missing(conn, now))

    # -- sending ------------------------------------------------------------------------------

    def _place(self, settings: FileExchangeSettings, location: str | None = None) -> Place:
        where = location or settings.location
        found = self.places.get(where)
        return found if found is not None else place_for(settings, where)

    def _cut_due(
        self, conn: Connection, flow: Flow, settings: FileExchangeSettings, now: datetime
    ) -> bool:
        cut = latest_cut(now, settings.schedule, self.tz)
        if cut is not None and queries.count_waiting(conn, flow.name, ready_by=cut):
            return True
        return bool(
            settings.max_lines and queries.count_waiting(conn, flow.name) >= settings.max_lines
        )

    async def _cut(self, flow: Flow, now: datetime) -> list[int]:
        """Build and send the flow's files from everything waiting (``max_lines`` a file)."""
        made: list[int] = []
        settings = self.systems[flow.target]
        while True:
            batch_id = await self.hub.store.write(lambda conn: self._build(conn, flow, now))
            if batch_id is None:
                break
            made.append(batch_id)
            await self._send(batch_id, flow, now)
            if not settings.max_lines:
                break
            made_now = await self.hub.store.read(partial(queries.get_batch, batch_id=batch_id))
            if made_now is None or made_now.lines < settings.max_lines:
                break
        return made

    def _build(self, conn: Connection, flow: Flow, now: datetime) -> int | None:
        """Take the flow's waiting deliveries into a new file (one write); None if nothing
        may go now (nothing waits, the flow is paused, the system is in maintenance)."""
        settings = self.systems[flow.target]
        holds = load_holds(conn, now, self.hub.hooks.hold_sources)
        if flow.name in holds.flows or holds.system_hold(flow.target) != HoldReason.BATCHED:
            return None
        rows = queries.waiting(conn, flow.name, settings.max_lines)
        if flow.ordered and rows:
            behind = with_undelivered_predecessor(conn, [r.id for r in rows])
            rows = [r for r in rows if r.id not in behind]
        taken = set(queries.take(conn, [r.id for r in rows], now))
        rows = [r for r in rows if r.id in taken]
        if not rows:
            return None
        found = documents.payloads(conn, [r.document_id for r in rows])
        # A flow with a map writes the downstream's shape of each document, as HTTP sends it.
        body_map = self.hub.hooks.body_maps.get(flow.name)
        unmapped: dict[int, str] = {}
        items = []
        for r in rows:
            doc = found.get(r.document_id)
            text = doc.payload if doc is not None else "{}"
            try:
                payload = json.loads(text if body_map is None else body_map(text.encode()))
            except ValueError as error:
                if body_map is not None:
                    unmapped[r.id] = f"request not built: {error}"
                    continue
                payload = {}
            items.append(Item(r.id, r.document_id, r.key, r.revision, payload))
        batch = fileformat.render(settings, items)
        for delivery_id, why in {**unmapped, **batch.refused}.items():
            queries.fail_local(conn, delivery_id, why, now)
            events.add_event(
                conn,
                now,
                "delivery_local_error",
                {"delivery": delivery_id, "detail": why},
                flow.target,
                flow.name,
            )
        if not batch.lines:
            return None
        local = now.astimezone(self.tz)
        day = local.strftime("%Y-%m-%d")
        dated = "{date" in settings.name
        seq = queries.next_seq(conn, flow.target, day if dated else None)
        name = fileformat.file_name(
            settings.name, flow=flow.name, system=flow.target, day=local, seq=seq
        )
        return queries.insert_batch(
            conn,
            {
                "system": flow.target,
                "flow": flow.name,
                "day": day,
                "seq": seq,
                "name": name,
                "lines": len(batch.lines),
                "digest": fileformat.digest(batch.content),
                "content": batch.content,
                "created_at": now,
            },
            [{"line": line, "delivery_id": d, "ref": ref[:200]} for line, d, ref in batch.lines],
        )

    async def _retry(self, flow: Flow, now: datetime) -> None:
        if flow.name in await self.hub.store.read(lambda conn: load_holds(conn, now).flows):
            return
        for row in await self.hub.store.read(lambda conn: queries.unsent(conn, flow.name, now)):
            await self._send(row.id, flow, now)

    async def _send(self, batch_id: int, flow: Flow, now: datetime) -> bool:
        """Put the batch (and its checksum file) at the downstream; True once it is there."""
        settings = self.systems[flow.target]
        batch = await self.hub.store.read(lambda conn: queries.get_batch(conn, batch_id))
        if batch is None or batch.sent_at is not None:
            return batch is not None
        content: bytes = batch.content
        place = self._place(settings)
        error: TransportError | None = None
        parents: list[str] = []
        if self.tracer is not None:
            parents = await self.hub.store.read(partial(queries.traceparents, batch_id=batch_id))
        with tracing.batch_file(self.tracer, flow.name, flow.target, batch.name, parents) as span:
            try:
                await place.put(batch.name, content)
                if settings.checksum:
                    name, text = fileformat.checksum_file(content, batch.name, settings.checksum)
                    await place.put(name, text)
            except TransportError as e:
                error = e
                if span is not None:
                    span.set_status(trace.Status(trace.StatusCode.ERROR, e.message))
        if error is not None:
            tries = batch.tries + 1
            steps = flow.retry
            next_try = now + steps[min(tries, len(steps)) - 1]
            detail = {
                "batch": batch_id,
                "name": batch.name,
                "detail": error.message,
                "kind": error.kind,
                "tries": tries,
                "next_try_at": next_try.isoformat(),
                "lines": batch.lines,
            }

            def failed(conn: Connection) -> None:
                queries.mark_tried(conn, batch_id, now, detail["detail"], next_try)
                events.add_event(conn, now, "file_send_failed", detail, flow.target, flow.name)

            await self.hub.store.write(failed)
            log.warning("file exchange: %s not sent (%s)", batch.name, error.message)
            return False
        due = result_due(now, settings.results.deadline, self.tz) if settings.results else None
        await self.hub.store.write(lambda conn: queries.mark_sent(conn, batch_id, now, due))
        return True

    async def send_now(self, flow_name: str) -> dict[str, Any]:
        """Send what is not sent yet, then cut a file from everything waiting, now."""
        flow = self._flow(flow_name)
        now = self.hub.clock.now()
        retried = await self.hub.store.read(lambda conn: queries.unsent(conn, flow.name))
        for row in retried:
            await self._send(row.id, flow, now)
        made = await self._cut(flow, now)
        ids = [r.id for r in retried] + made
        batches = await self.hub.store.read(lambda conn: [queries.get_batch(conn, i) for i in ids])
        return {
            "flow": flow.name,
            "batches": [self._batch_json(b, now) for b in batches if b is not None],
        }

    # -- results ------------------------------------------------------------------------------

    async def fetch_results(self, system: str, now: datetime | None = None) -> dict[str, Any]:
        """Read the result files not read yet and settle the deliveries they name."""
        settings = self.systems[system]
        spec = settings.results
        if spec is None:
            raise InputError(f"system {system!r} has no file_exchange.results to fetch")
        now = now or self.hub.clock.now()
        place = self._place(settings, spec.location)
        names = await place.names(spec.pattern)

        def fresh(conn: Connection) -> list[str]:
            ours = queries.batch_names(conn, system)
            return [
                n
                for n in names
                if n not in ours
                and n.rsplit(".", 1)[0] not in ours
                and not queries.result_seen(conn, system, n)
            ]

        read: list[dict[str, Any]] = []
        for name in await self.hub.store.read(fresh):
            try:
                content = await place.get(name)
            except TooBig as exc:
                # Recorded with its problem (and an event), so the files after it are read.
                problem = {"line": 0, "problem": str(exc), "text": ""}
                parsed = fileformat.Results(problems=[problem])
            else:
                parsed = fileformat.parse_results(settings, content)
            read.append(
                await self.hub.store.write(
                    partial(self._settle, system=system, name=name, parsed=parsed, now=now)
                )
            )
        return {"system": system, "results": read}

    def _settle(
        self, conn: Connection, system: str, name: str, parsed: fileformat.Results, now: datetime
    ) -> dict[str, Any]:
        flows = [f.name for f in self.topology.flows_to(system)]
        result_id = queries.insert_result(
            conn,
            {
                "system": system,
                "name": name,
                "fetched_at": now,
                "lines": len(parsed.lines) + len(parsed.problems),
                "accepted": 0,
                "refused": 0,
                "problems": "[]",
            },
        )
        problems = list(parsed.problems)
        counts = {"accepted": 0, "refused": 0}
        delivered: list[int] = []
        for line in parsed.lines:
            found = queries.open_lines(conn, flows, line.key)
            if not found:
                problems.append(
                    {
                        "line": line.line,
                        "problem": f"{line.key!r} names no line waiting for a result",
                        "text": line.text[:500],
                    }
                )
                continue
            sent = found[0]
            ok = line.verdict == "accepted"
            queries.answer_line(
                conn, sent.batch_id, sent.line, line.verdict, now, result_id, line.line
            )
            detail = f"{sent.name} line {sent.line}: {line.verdict} in {name} line {line.line}"
            if line.message and not ok:
                detail += f": {line.message}"
            settled = queries.settle(
                conn,
                sent.delivery_id,
                delivered=ok,
                message=line.message,
                receipt=line.text,
                detail=detail,
                now=now,
            )
            if not settled:
                problems.append(
                    {
                        "line": line.line,
                        "problem": f"delivery {sent.delivery_id} was not waiting for a result",
                        "text": line.text[:500],
                    }
                )
                continue
            counts[line.verdict] += 1
            if ok:
                if self.topology.flows[sent.flow].ordered:
                    delivered.append(sent.delivery_id)
            else:
                events.add_event(
                    conn,
                    now,
                    "delivery_rejected",
                    {"delivery": sent.delivery_id, "detail": line.message, "file": name},
                    system,
                    sent.flow,
                )
        if delivered:
            self._release_next(conn, delivered, now)
        queries.finish_result(conn, result_id, counts["accepted"], counts["refused"], problems)
        if problems:
            events.add_event(
                conn,
                now,
                "file_result_problems",
                {"file": name, "count": len(problems), "problems": problems[:SAMPLE]},
                system,
            )
        return {"name": name, **counts, "problems": problems}

    def _release_next(self, conn: Connection, delivered: Sequence[int], now: datetime) -> None:
        """Ordered flows: each key's next revision may go now (into the next file)."""
        pairs = sorted(set(queries.keys_of(conn, delivered)))
        rows = claims.next_blocked(conn, pairs)
        holds = load_holds(conn, now, self.hub.hooks.hold_sources)
        for (status, reason), ids in holds.place_rows(rows).items():
            transitions.set_state(conn, ids, status, reason, now)

    def _report_missing(self, conn: Connection, now: datetime) -> None:
        for flow in self.flows.values():
            for batch in queries.overdue(conn, flow.name, now):
                if not queries.mark_missing(conn, batch.id, now):
                    continue
                events.add_event(
                    conn,
                    now,
                    "file_result_missing",
                    {
                        "batch": batch.id,
                        "name": batch.name,
                        "sent_at": batch.sent_at.isoformat(),
                        "due_at": batch.result_due_at.isoformat(),
                        "waiting": batch.lines - batch.answered,
                        "detail": f"no result for {batch.name} by "
                        f"{batch.result_due_at.astimezone(self.tz):%Y-%m-%d %H:%M}",
                    },
                    flow.target,
                    flow.name,
                )

    # -- reading ------------------------------------------------------------------------------

    def flow_status(self) -> dict[str, dict[str, Any]]:
        """Per file flow, for the hub's status: files not sent yet and results overdue."""
        now = self.hub.clock.now()
        found = {name: {"files": {"not_sent": 0, "result_overdue": 0}} for name in self.flows}
        for flow, not_sent, overdue in self.hub.store.read_sync(
            lambda conn: queries.file_counts(conn, now)
        ):
            if flow in found:
                found[flow]["files"] = {"not_sent": int(not_sent), "result_overdue": int(overdue)}
        return found

    def _flow(self, name: str) -> Flow:
        flow = self.flows.get(name)
        if flow is None:
            self.hub.check_flow(name)
            known = ", ".join(sorted(self.flows)) or "none"
            raise InputError(
                f"flow {name!r} does not go to a transport: file system (file flows: {known})"
            )
        return flow

    def system_of(self, flow_name: str) -> str:
        return self._flow(flow_name).target

    def batches(self, flow: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        if flow is not None:
            self._flow(flow)
        now = self.hub.clock.now()
        rows = self.hub.store.read_sync(lambda conn: queries.list_batches(conn, flow, limit))
        return [self._batch_json(r, now) for r in rows]

    def results(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = self.hub.store.read_sync(
            lambda conn: queries.list_results(conn, list(self.systems), limit)
        )
        return [
            {
                "id": r.id,
                "system": r.system,
                "name": r.name,
                "fetched_at": r.fetched_at.isoformat(),
                "lines": r.lines,
                "accepted": r.accepted,
                "refused": r.refused,
                "problems": json.loads(r.problems),
            }
            for r in rows
        ]

    def batch(self, batch_id: int) -> dict[str, Any]:
        def read(conn: Connection) -> tuple[Any, list[Any]]:
            return queries.get_batch(conn, batch_id), queries.lines_of(conn, batch_id)

        row, lines = self.hub.store.read_sync(read)
        if row is None or row.system not in self.systems:
            raise NotFound(f"no batch file {batch_id}")
        body = self._batch_json(row, self.hub.clock.now())
        body["lines_sent"] = [
            {"line": r.line, "delivery": r.delivery_id, "ref": r.ref, "verdict": r.verdict}
            for r in lines
        ]
        return body

    def _batch_json(self, row: Any, now: datetime) -> dict[str, Any]:
        if row.sent_at is None:
            state = "not_sent"
        elif row.answered >= row.lines:
            state = "answered"
        elif row.result_due_at is not None and row.result_due_at <= now:
            state = "result_overdue"
        else:
            state = "awaiting_result"
        return {
            "id": row.id,
            "flow": row.flow,
            "system": row.system,
            "name": row.name,
            "state": state,
            "lines": row.lines,
            "answered": row.answered,
            "created_at": row.created_at.isoformat(),
            "sent_at": row.sent_at.isoformat() if row.sent_at else None,
            "tries": row.tries,
            "last_error": row.last_error,
            "next_try_at": row.next_try_at.isoformat() if row.next_try_at else None,
            "result_due_at": row.result_due_at.isoformat() if row.result_due_at else None,
            "sha256": row.digest,
        }


def install(hub: Hub) -> None:
    """The ``batched`` hold source for every file-exchange system, the loop that cuts, sends
    and settles files, and their files in the hub's status (``files``: not sent, results
    overdue); nothing when the topology has no ``transport: file`` system."""
    service = FileExchange(hub)
    hub.capabilities[NAME] = service
    if service.systems:
        hub.hooks.hold_sources.append(service.hold_source)
        hub.hooks.background.append(service.run)
        hub.hooks.flow_status.append(service.flow_status)


def file_exchange(hub: Hub) -> FileExchange:
    service: FileExchange = hub.capabilities[NAME]
    return service
