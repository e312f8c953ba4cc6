"""Sources: pull documents from upstreams that cannot push, into intake as their own
submissions (docs/sources.md).

:class:`Sources` is the service the API, the CLI and the background loop call. One poll of
a source reads a batch after its cursor, prepares each row as intake prepares an API
submission (contract, scenario, key), and in ONE job of the store's writer stores the
accepted documents, records the refused rows as problems and moves the cursor, so a crash
neither loses nor repeats a row. The cursor moves by compare-and-set: two pollers of one
source never both take a batch.

Events (for the alerter): ``source_behind`` when more rows wait than ``behind_rows`` or the
oldest waits longer than ``behind_age`` (once, until it catches up), ``source_unreachable``
when the upstream cannot be read (once, until it answers), ``source_rows_refused`` for each
batch with rows intake refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import sys
import threading
import time
from datetime import UTC, datetime, tzinfo
from datetime import time as dt_time
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from interlink.clock import latest_scheduled, next_scheduled
from interlink.config import SourceSettings, System
from interlink.errors import ConfigError, Conflict, InputError, InterlinkError, NotFound
from interlink.features.sources import queries
from interlink.features.sources.metrics import BEHIND, OLDEST, PAUSED, ROWS, UP, count_results
from interlink.features.sources.outbox import Outbox, Pulled, Unreachable, encode_cursor
from interlink.features.sources.query import QueryApi
from interlink.intake import Item, Prepared
from interlink.store.queries import audit, events

if TYPE_CHECKING:
    from interlink.service import Hub

NAME = "sources"
log = logging.getLogger(__name__)

# Test seam for the crash tests (tests/integration/test_sources_outbox.py): stop dead at
# "written" (inside the transaction, after intake wrote the batch) or "committed" (after
# the commit, before rows are marked taken), so that SIGKILL lands exactly there.
FAULT_ENV = "INTERLINK_SOURCES_FAULT"


_KEY = re.compile(r"[\x20-\x7e]{1,200}")


def _fault(point: str) -> None:
    if os.environ.get(FAULT_ENV) == point:
        sys.stderr.write(f"sources-fault:{point}\n")
        sys.stderr.flush()
        time.sleep(600)


class Sources:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.found: dict[str, tuple[System, SourceSettings]] = {
            s.name: (system, s)
            for system in hub.topology.systems.values()
            for s in system.sources.values()
        }
        self._readers: dict[str, Outbox | QueryApi] = {}
        self._locks = {name: threading.Lock() for name in self.found}
        self._lock = threading.Lock()

    # -- looking up ----------------------------------------------------------------------------

    def source(self, name: str) -> tuple[System, SourceSettings]:
        found = self.found.get(name)
        if found is None:
            known = ", ".join(sorted(self.found)) or "none in the topology"
            raise NotFound(f"no source {name!r} (sources: {known})")
        return found

    def _reader(self, settings: SourceSettings) -> Outbox | QueryApi:
        with self._lock:
            reader = self._readers.get(settings.name)
            if reader is None:
                if settings.kind == "api":
                    reader = QueryApi(settings)
                else:
                    reader = Outbox(settings, self._zone(settings))
                self._readers[settings.name] = reader
            return reader

    def close(self) -> None:
        with self._lock:
            for reader in self._readers.values():
                reader.close()
            self._readers.clear()

    # -- polling -------------------------------------------------------------------------------

    def poll(self, name: str, limit: int | None = None) -> dict[str, Any]:
        """Take one batch of ``name`` into intake; what was read and what became of it."""
        system, settings = self.source(name)
        with self._locks[name]:
            state = self._state(name, system.name)
            if state.paused:
                PAUSED.labels(name).set(1)
                return {"source": name, "paused": True, "read": 0}
            PAUSED.labels(name).set(0)
            if settings.kind in ("outbox", "api"):
                return self._poll_rows(system, settings, state, limit or settings.batch)
            from interlink.features.sources.files import poll_files

            return poll_files(self, system, settings, state, limit or settings.batch)

    def _state(self, name: str, system: str) -> Any:
        store = self.hub.store
        state = store.read_sync(lambda conn: queries.get_state(conn, name))
        if state is None:
            store.write_sync(lambda conn: queries.ensure_state(conn, name, system))
            state = store.read_sync(lambda conn: queries.get_state(conn, name))
        return state

    def _poll_rows(
        self, system: System, settings: SourceSettings, state: Any, limit: int
    ) -> dict[str, Any]:
        name = settings.name
        now = self.hub.clock.now()
        cursor = json.loads(state.cursor) if state.cursor else None
        try:
            rows, behind, oldest = self._reader(settings).read(cursor, limit, now)
        except (Unreachable, InputError) as exc:
            return self._unreachable(system, settings, state, str(exc), now)
        prepared = [self._prepare(system, settings, row) for row in rows]
        new_cursor = encode_cursor(rows[-1].position) if rows else state.cursor

        def job(conn: Connection) -> list[Any]:
            return self.accept(
                conn, system, settings, state, rows, prepared, new_cursor, behind, oldest, now
            )

        results = self.hub.store.write_sync(job)
        _fault("committed")
        summary = self._summary(name, rows, results)
        reader = self._reader(settings)
        if settings.mark_taken and rows and isinstance(reader, Outbox):
            try:
                reader.mark([r.id for r in rows], now)
            except Unreachable as exc:
                # The cursor has moved: the rows are taken whether or not the mark lands.
                summary["mark_error"] = str(exc)
        self._gauges(name, behind, oldest, now, up=True)
        summary.update(
            cursor=json.loads(new_cursor) if new_cursor else None,
            behind=behind,
            oldest_unread_at=oldest.isoformat() if oldest else None,
        )
        return summary

    def _prepare(
        self, system: System, settings: SourceSettings, row: Pulled
    ) -> Prepared | InterlinkError:
        # One key per upstream row version: the row taken twice is the same document; a
        # later row with an earlier payload (A, B, A) is a new revision, as the upstream
        # meant. The latest revision's payload again is a duplicate, as over the API.
        key = f"{settings.name}#{row.version}" if row.version else ""
        item = Item(row.type, row.payload, key if _KEY.fullmatch(key) else None)
        try:
            return self.hub.intake.prepare(system, item)
        except InterlinkError as exc:
            return exc

    def accept(
        self,
        conn: Connection,
        system: System,
        settings: SourceSettings,
        state: Any,
        rows: list[Pulled],
        prepared: list[Prepared | InterlinkError],
        new_cursor: str | None,
        behind: int | None,
        oldest: datetime | None,
        now: datetime,
    ) -> list[Any]:
        """Inside the writer: the batch's documents, its problems and the cursor, together."""
        name = settings.name
        values = self.lag(conn, system, settings, state, behind, oldest, now)
        if not queries.advance(conn, name, state.cursor, new_cursor, **values):
            raise Conflict(f"source {name}: another poller took this batch; nothing was stored")
        results = self.hub.intake.write_retrying(conn, prepared, now) if prepared else []
        problems = []
        for row, result in zip(rows, results, strict=True):
            if isinstance(result, InterlinkError):
                problems.append(
                    queries.problem_row(
                        name,
                        now,
                        row.ref,
                        result.message,
                        result.detail.get("problems", []),
                        {"type": row.type, "payload": row.payload},
                    )
                )
        queries.record_batch(conn, name, system.name, len(rows), problems, now)
        _fault("written")
        return results

    def lag(
        self,
        conn: Connection,
        system: System,
        settings: SourceSettings,
        state: Any,
        behind: int | None,
        oldest: datetime | None,
        now: datetime,
    ) -> dict[str, Any]:
        """The state after a poll that reached the upstream; ``source_behind`` once when the
        source falls behind (until it catches up)."""
        lagging = _lagging(settings, behind, oldest, now)
        if lagging and state.behind_since is None:
            events.add_event(
                conn,
                now,
                "source_behind",
                {
                    "source": settings.name,
                    "systems": [system.name],
                    "behind": behind,
                    "oldest_unread_at": oldest.isoformat() if oldest else None,
                },
                system=system.name,
            )
        return {
            "polled_at": now,
            "behind": behind,
            "oldest_unread_at": oldest,
            "error": None,
            "unreachable_since": None,
            "behind_since": (state.behind_since or now) if lagging else None,
        }

    def _unreachable(
        self, system: System, settings: SourceSettings, state: Any, error: str, now: datetime
    ) -> dict[str, Any]:
        name = settings.name
        log.warning("source %s: cannot read the upstream: %s", name, error)

        def job(conn: Connection) -> None:
            queries.set_state(
                conn,
                name,
                error=error,
                polled_at=now,
                unreachable_since=state.unreachable_since or now,
            )
            if state.unreachable_since is None:
                events.add_event(
                    conn,
                    now,
                    "source_unreachable",
                    {"source": name, "systems": [system.name], "error": error},
                    system=system.name,
                )

        self.hub.store.write_sync(job)
        UP.labels(name).set(0)
        return {"source": name, "read": 0, "error": error}

    def _summary(self, name: str, rows: list[Pulled], results: list[Any]) -> dict[str, Any]:
        counts = count_results(results)
        for result, count in counts.items():
            if count:
                ROWS.labels(name, result).inc(count)
        return {
            "source": name,
            "paused": False,
            "read": len(rows),
            **counts,
        }

    def _gauges(
        self, name: str, behind: int | None, oldest: datetime | None, now: datetime, up: bool
    ) -> None:
        BEHIND.labels(name).set(behind or 0)
        OLDEST.labels(name).set(max(0.0, (now - oldest).total_seconds()) if oldest else 0)
        UP.labels(name).set(1 if up else 0)

    # -- the loop ------------------------------------------------------------------------------

    async def loop(self, stop: asyncio.Event) -> None:
        """Poll every source on its interval or at its scheduled times (at once again after a
        full batch, within its rate) until ``stop`` is set."""
        # A poll runs in a thread that cancelling its task would not stop: each source ends
        # after its poll in hand, and only then are the readers closed. Cancelled before,
        # a poll still running would open its reader again after the close, and that
        # reader's connections would never be closed.
        halt = asyncio.Event()
        tasks = [asyncio.create_task(self._run(name, halt)) for name in self.found]
        try:
            await stop.wait()
        finally:
            halt.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.to_thread(self.close)

    async def _run(self, name: str, stop: asyncio.Event) -> None:
        system, settings = self.source(name)
        times = settings.times
        zone = self._zone(settings)
        # A scheduled source: the last of its times a poll was done for. One missed while the
        # service was down is caught up at start; a source never polled waits for its first.
        polled = await asyncio.to_thread(self._polled_at, name, system.name) if times else None
        handled = polled or self.hub.clock.now()
        more = False
        slot: datetime | None = None  # the scheduled time being polled for, through its batches
        while not stop.is_set():
            if times and not more:
                now = self.hub.clock.now()
                slot = due_slot(now, times, zone, handled)
                if slot is None:
                    coming = next_scheduled(now, times, zone)
                    wait = (coming - now).total_seconds() if coming else 60.0
                    # Looked at again at least every minute: the clock may be moved.
                    await _until(stop, min(max(wait, 0.001), 60.0))
                    continue
            delay = settings.interval.total_seconds()
            started = time.monotonic()
            more = False
            try:
                result = await asyncio.to_thread(self.poll, name)
            except Conflict:
                log.debug("source %s: another process took this batch", name)
            except Exception:
                log.exception("source %s: poll failed; trying again", name)
            else:
                read = int(result.get("read", 0))
                failed = bool(result.get("error") or result.get("paused"))
                # More is waiting: a full batch, or files left in the drop folder.
                found = result.get("behind") if settings.kind == "files" else read >= settings.batch
                more = bool(found) and not failed
                if more:
                    delay = 0.0
                elif slot is not None and not failed:
                    # The scheduled time is done with: wait for the next one. A failed or
                    # paused one is tried again after the interval.
                    handled, delay = slot, 0.0
                if settings.rate:
                    delay = max(delay, read / settings.rate - (time.monotonic() - started))
            await _until(stop, max(delay, 0.0) or 0.001)

    def due_now(self, name: str) -> datetime | None:
        """For a scheduled source, its time of day it has not been polled for yet (one that
        passed since its last poll), else None; None for a source never polled, which waits
        for its first time, and for one polled by interval."""
        system, settings = self.source(name)
        polled = self._polled_at(name, system.name)
        if not settings.schedule or polled is None:
            return None
        return due_slot(self.hub.clock.now(), settings.times, self._zone(settings), polled)

    def _next_poll(self, settings: SourceSettings, now: datetime) -> str | None:
        """A scheduled source's next time of day, in UTC; None for one polled by interval."""
        coming = next_scheduled(now, settings.times, self._zone(settings))
        return coming.astimezone(UTC).isoformat() if coming is not None else None

    def _zone(self, settings: SourceSettings) -> tzinfo:
        return ZoneInfo(settings.timezone) if settings.timezone else self.hub.topology.tz

    def _polled_at(self, name: str, system: str) -> datetime | None:
        polled: datetime | None = self._state(name, system).polled_at
        return polled

    # -- reading and actions -------------------------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        now = self.hub.clock.now()

        def read(conn: Connection) -> tuple[dict[str, Any], dict[str, int]]:
            return queries.all_states(conn), queries.count_problems(conn)

        states, problems = self.hub.store.read_sync(read)
        out = []
        for name, (system, s) in sorted(self.found.items()):
            st = states.get(name)
            oldest = st.oldest_unread_at if st is not None else None
            out.append(
                {
                    "name": name,
                    "system": system.name,
                    "kind": s.kind,
                    "document": s.document,
                    "interval": s.interval.total_seconds(),
                    "schedule": list(s.schedule),
                    "next_poll_at": self._next_poll(s, now),
                    "paused": bool(st.paused) if st is not None else False,
                    "paused_by": st.paused_by if st is not None else None,
                    "cursor": json.loads(st.cursor) if st is not None and st.cursor else None,
                    "polled_at": st.polled_at.isoformat() if st and st.polled_at else None,
                    "accepted": int(st.accepted) if st is not None else 0,
                    "refused": int(st.refused) if st is not None else 0,
                    "problems": problems.get(name, 0),
                    "behind": st.behind if st is not None else None,
                    "oldest_unread_age": (now - oldest).total_seconds() if oldest else None,
                    "behind_since": st.behind_since.isoformat() if st and st.behind_since else None,
                    "error": st.error if st is not None else None,
                    "unreachable_since": (
                        st.unreachable_since.isoformat() if st and st.unreachable_since else None
                    ),
                }
            )
        return out

    def status_section(self) -> dict[str, Any]:
        """``{"sources": {name: lag}}`` for the hub's status: one read of the state table."""
        now = self.hub.clock.now()
        states = self.hub.store.read_sync(queries.all_states)
        found: dict[str, Any] = {}
        for name, (system, settings) in sorted(self.found.items()):
            st = states.get(name)
            oldest = st.oldest_unread_at if st is not None else None
            found[name] = {
                "system": system.name,
                "kind": settings.kind,
                "paused": bool(st.paused) if st is not None else False,
                "polled_at": st.polled_at.isoformat() if st and st.polled_at else None,
                "behind": st.behind if st is not None else None,
                "oldest_unread_age": (now - oldest).total_seconds() if oldest else None,
                "lagging": bool(st and st.behind_since),
                "error": st.error if st is not None else None,
            }
        return {"sources": found}

    def problems(
        self, source: str | None = None, limit: int = 100, before: int | None = None
    ) -> list[dict[str, Any]]:
        if source is not None:
            self.source(source)
        limit = max(1, min(limit, 1000))
        rows = self.hub.store.read_sync(
            lambda conn: queries.list_problems(conn, source, limit, before)
        )
        return [
            {
                "id": int(r.id),
                "source": r.source,
                "at": r.at.isoformat(),
                "ref": r.ref,
                "message": r.message,
                "problems": json.loads(r.problems),
                "row": json.loads(r.row),
            }
            for r in rows
        ]

    def pause(self, name: str, actor: str, note: str = "") -> dict[str, Any]:
        return self._set_paused(name, actor, True, note)

    def resume(self, name: str, actor: str) -> dict[str, Any]:
        return self._set_paused(name, actor, False, "")

    def _set_paused(self, name: str, actor: str, paused: bool, note: str) -> dict[str, Any]:
        system, _ = self.source(name)
        now = self.hub.clock.now()
        if paused and len(note) > 2000:
            raise InputError("the note may take at most 2000 characters")

        def write(conn: Connection) -> None:
            queries.ensure_state(conn, name, system.name)
            queries.set_state(
                conn,
                name,
                paused=paused,
                paused_at=now if paused else None,
                paused_by=actor if paused else None,
                note=note or None,
            )
            action = "source_pause" if paused else "source_resume"
            detail = {"note": note} if paused else {}
            audit.add_audit(conn, now, actor, action, f"source:{name}", detail)

        self.hub.store.write_sync(write)
        PAUSED.labels(name).set(1 if paused else 0)
        return {"source": name, "paused": paused}


def due_slot(
    now: datetime, times: list[dt_time], zone: tzinfo, handled: datetime
) -> datetime | None:
    """The scheduled time a source should poll for now: the latest of ``times`` at or before
    ``now``, if no poll was done for it (``handled`` is the last that was); else None."""
    latest = latest_scheduled(now, times, zone)
    return latest if latest is not None and latest > handled else None


async def _until(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


def _lagging(
    settings: SourceSettings, behind: int | None, oldest: datetime | None, now: datetime
) -> bool:
    if behind is not None and behind > settings.behind_rows:
        return True
    return oldest is not None and now - oldest > settings.behind_age


def install(hub: Hub) -> None:
    from interlink.features.sources.check import problems, render

    if problems(hub.topology):  # the file is read again only to name the lines
        raise ConfigError(render(hub.topology))
    service = Sources(hub)
    hub.capabilities[NAME] = service
    if service.found:
        hub.hooks.background.append(service.loop)
        hub.hooks.status_sections.append(service.status_section)


def sources(hub: Hub) -> Sources:
    service: Sources = hub.capabilities[NAME]
    return service
