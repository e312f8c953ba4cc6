"""A reconciliation run: stream both sides sorted by key, match, store, repush the missing.

Our side streams from the store in key order (the deliveries table is indexed by flow, key,
revision). The downstream's side is streamed from its export into a temporary SQLite file in
batches and read back sorted, so neither side is ever held in memory whole; the pure matcher
(:func:`~interlink.features.reconcile.matching.match_key`) sees one key at a time.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from interlink.config import Flow, ReconcileColumns, ReconcileSettings, Topology
from interlink.errors import InputError, NotFound
from interlink.features.reconcile import queries, sources
from interlink.features.reconcile.matching import CATEGORIES, ERRORS, Item, Ours, Rules, match_key
from interlink.features.reconcile.sources import to_theirs
from interlink.model import Status
from interlink.store.queries import audit, events
from interlink.times import parse_time

if TYPE_CHECKING:
    from interlink.service import Hub

PROBLEM_LIMIT = 100
BATCH = 20_000
REPUSHABLE = (Status.DEAD, Status.DELIVERED)


@dataclass
class Report:
    flow: str
    source: str
    since: datetime | None
    until: datetime | None
    items: list[Item] = field(default_factory=list)
    ours_count: int = 0
    ours_amount: Decimal = Decimal(0)
    theirs_count: int = 0
    theirs_amount: Decimal = Decimal(0)
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0
    skipped: int = 0  # downstream rows dated outside the period, matching nothing of ours
    encoding: str | None = None
    run_id: int | None = None

    @property
    def complete(self) -> bool:
        return self.problem_count == 0

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(CATEGORIES, 0)
        for item in self.items:
            counts[item.category] += 1
        return counts

    def differences(self) -> int:
        return sum(1 for item in self.items if item.category in ERRORS)

    def totals(self) -> dict[str, Any]:
        return {
            "ours": {"count": self.ours_count, "amount": str(self.ours_amount)},
            "theirs": {"count": self.theirs_count, "amount": str(self.theirs_amount)},
            "difference": {
                "count": self.theirs_count - self.ours_count,
                "amount": str(self.theirs_amount - self.ours_amount),
            },
        }

    def to_json(self, items: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {
            "run": self.run_id,
            "flow": self.flow,
            "period": {
                "since": self.since.isoformat() if self.since else None,
                "until": self.until.isoformat() if self.until else None,
            },
            "source": self.source,
            "encoding": self.encoding,
            "complete": self.complete,
            "problems": self.problems,
            "problem_count": self.problem_count,
            "skipped_out_of_period": self.skipped,
            "differences": self.differences(),
            "categories": self.counts(),
            "totals": self.totals(),
        }
        if items:
            body["items"] = [item.to_json() for item in self.items]
        return body


class _TheirsTable:
    """The downstream's rows in a temporary SQLite file, read back in key order."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="interlink-reconcile-")
        self.conn = sqlite3.connect(os.path.join(self._dir.name, "theirs.db"))
        for pragma in (
            "journal_mode=OFF",
            "synchronous=OFF",
            "temp_store=FILE",
            "cache_size=-32768",
        ):
            self.conn.execute(f"PRAGMA {pragma}")
        self.conn.execute(
            "CREATE TABLE theirs (key TEXT NOT NULL, revision INTEGER, amount TEXT, "
            "status TEXT, currency TEXT, line INTEGER, period INTEGER)"
        )
        self.in_order = True
        self._last: tuple[str, int] | None = None

    def add(self, rows: list[tuple[Any, ...]]) -> None:
        # Exports sorted by key (or by a date that follows the key) need no sort afterwards.
        if self.in_order:
            last = self._last
            for row in rows:
                mark = (row[0], -1 if row[1] is None else row[1])
                if last is not None and mark < last:
                    self.in_order = False
                    break
                last = mark
            self._last = last
        self.conn.executemany("INSERT INTO theirs VALUES (?,?,?,?,?,?,?)", rows)

    def sorted(self) -> Iterator[tuple[Any, ...]]:
        order = "rowid" if self.in_order else "key, revision, line"
        # S608: ``order`` is one of two literals above, never input.
        cursor = self.conn.execute(f"SELECT * FROM theirs ORDER BY {order}")  # noqa: S608
        while True:
            batch = cursor.fetchmany(BATCH)
            if not batch:
                return
            yield from batch

    def close(self) -> None:
        self.conn.close()
        self._dir.cleanup()


def settings_for(flow: Flow) -> ReconcileSettings:
    return flow.reconcile or ReconcileSettings()


def mapped_records(
    topology: Topology, flow: Flow, settings: ReconcileSettings
) -> tuple[bool, dict[str, str]]:
    """What the downstream records when the flow's map reshaped what it received
    (docs/mapping.md): whether its amounts are in fen (the map writes our ``amount`` field as
    ``fen``), and the statuses it records for ours (the code table the map writes the status
    field through: by value, and by each scenario that matches one value of it)."""
    doc = topology.documents.get(flow.document)
    if flow.map is None or doc is None:
        return False, {}
    fen = False
    statuses: dict[str, str] = {}
    for spec in flow.map.fields.values():
        if doc.amount and spec.path == doc.amount and spec.format == "fen":
            fen = True
        table = topology.code_tables.get(spec.code or "")
        if spec.path == settings.status_field and table is not None:
            statuses.update(table)
            for scenario in doc.scenarios:
                value = scenario.when.get(settings.status_field)
                if isinstance(value, str) and value in table:
                    statuses[scenario.name] = table[value]
    return fen, statuses


def parse_map(text: str | None) -> dict[str, str]:
    """``key=COL,amount=COL`` → {"key": "COL", "amount": "COL"}; ``date=`` unmaps a column
    the flow's config maps."""
    if not text:
        return {}
    found: dict[str, str] = {}
    for part in text.split(","):
        name, sep, column = part.partition("=")
        name, column = name.strip(), column.strip()
        if not sep or name not in sources.FIELDS:
            raise InputError(
                f"--map: {part.strip()!r} is not FIELD=COLUMN with FIELD one of "
                f"{', '.join(sources.FIELDS)}"
            )
        found[name] = column
    return found


def parse_tolerance(text: str | Decimal | None) -> Decimal | None:
    if text is None:
        return None
    try:
        value = Decimal(str(text))
    except InvalidOperation:
        raise InputError(f"tolerance {text!r} is not a decimal number") from None
    if not value.is_finite() or value < 0:
        raise InputError(f"tolerance {text!r} must be zero or more")
    return value


def resolve_period(
    tz: tzinfo, day: str | None, since: str | None, until: str | None
) -> tuple[datetime | None, datetime | None]:
    """The period from ``day`` (that whole day in ``tz``) or ``since``/``until`` (ISO 8601,
    in ``tz`` without an offset); (None, None) means everything."""
    if day:
        if since or until:
            raise InputError("give either a date or since/until, not both")
        try:
            d = date.fromisoformat(day.strip())
        except ValueError:
            raise InputError(f"date {day!r} is not a date like 2026-01-05") from None
        start = datetime.combine(d, time(), tzinfo=tz).astimezone(UTC)
        end = datetime.combine(d + timedelta(days=1), time(), tzinfo=tz).astimezone(UTC)
        return start, end
    return (
        parse_time(since, tz, "since") if since else None,
        parse_time(until, tz, "until") if until else None,
    )


class Reconciler:
    """The reconciliation service of a hub (``hub.capabilities["reconcile"]``)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def _flow(self, flow: str) -> Flow:
        self.hub.check_flow(flow)
        return self.hub.topology.flows[flow]

    def open_source(
        self,
        flow: str,
        file: Path | None,
        encoding: str | None,
        since: datetime | None,
        until: datetime | None,
        source_name: str | None = None,
    ) -> sources.Records:
        settings = settings_for(self._flow(flow))
        sources.check_encoding(encoding or settings.encoding)
        if file is not None:
            records = sources.read_file(Path(file), encoding or settings.encoding)
            if source_name:
                records.name = source_name
            return records
        if settings.endpoint is None:
            raise InputError(
                f"flow {flow} has no reconcile.endpoint: give the downstream's export with --file"
            )
        return sources.read_endpoint(settings.endpoint, since, until)

    def run(
        self,
        flow: str,
        records: sources.Records,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        columns: dict[str, str] | None = None,
        tolerance: Decimal | None = None,
        actor: str = "system",
        store: bool = True,
    ) -> Report:
        """Compare the flow's deliveries of documents received in [since, until) with
        ``records``; store the run (unless ``store`` is false) and return its report.
        ``records`` is closed when it returns."""
        try:
            return self._run(
                flow,
                records,
                since=since,
                until=until,
                columns=columns,
                tolerance=tolerance,
                actor=actor,
                store=store,
            )
        finally:
            records.close()

    def _run(
        self,
        flow: str,
        records: sources.Records,
        *,
        since: datetime | None,
        until: datetime | None,
        columns: dict[str, str] | None,
        tolerance: Decimal | None,
        actor: str,
        store: bool,
    ) -> Report:
        topo_flow = self._flow(flow)
        settings = settings_for(topo_flow)
        if since is not None and until is not None and since >= until:
            raise InputError("the period is empty: --since must be before --until")
        mapping = ReconcileColumns(**{**settings.map.model_dump(), **(columns or {})})
        fen, mapped_statuses = mapped_records(self.hub.topology, topo_flow, settings)
        rules = Rules(
            tolerance=tolerance if tolerance is not None else Decimal(settings.tolerance),
            status_map=dict(settings.status_map) or mapped_statuses,
            by_revision=False,
        )
        started = self.hub.clock.now()
        normalizer = sources.Normalizer(records, mapping, self.hub.topology.tz, since, until)
        rules = Rules(rules.tolerance, rules.status_map, normalizer.by_revision)
        report = Report(flow, records.name, since, until, encoding=records.encoding)
        table = _TheirsTable()
        try:
            self._load(records, normalizer, table, report, fen=fen)
            self._compare(topo_flow, settings, rules, table, report)
        finally:
            table.close()
        if since is not None or until is not None:
            self._outside_period(flow, report)
        if store:
            self._store(report, started, actor)
        return report

    def _load(
        self,
        records: sources.Records,
        normalizer: sources.Normalizer,
        table: _TheirsTable,
        report: Report,
        *,
        fen: bool = False,
    ) -> None:
        """``fen``: the downstream records amounts in fen (a mapped flow); read them in yuan."""
        batch: list[tuple[Any, ...]] = []
        rows = 0
        convert = normalizer.convert
        for line, values in records.rows:
            row = convert(line, values)
            if isinstance(row, str):
                if row:
                    report.problem_count += 1
                    if len(report.problems) < PROBLEM_LIMIT:
                        report.problems.append(row)
                continue
            if fen and row[2] is not None:
                row = (row[0], row[1], str(Decimal(row[2]).scaleb(-2)), *row[3:])
            rows += 1
            batch.append(row)
            if len(batch) >= BATCH:
                table.add(batch)
                batch = []
        if batch:
            table.add(batch)
        if rows == 0 and report.problem_count == 0 and records.name != "query endpoint":
            raise InputError(f"{records.name}: the file has a header but no records")

    def _compare(
        self,
        flow: Flow,
        settings: ReconcileSettings,
        rules: Rules,
        table: _TheirsTable,
        report: Report,
    ) -> None:
        status_field = settings.status_field or None
        currency_field = settings.currency_field

        def read(conn: Connection) -> None:
            mine = queries.ours(
                conn, flow.name, report.since, report.until, status_field, currency_field
            )
            self._merge(mine, table.sorted(), rules, report)

        self.hub.store.read_sync(read)

    @staticmethod
    def _merge(mine: Iterator[Any], theirs: Iterator[Any], rules: Rules, report: Report) -> None:
        """Walk both key-sorted streams together; each key group goes to the matcher.

        The common case (one of ours, one of theirs, same amount text, the status we expect,
        nothing late or out of period) is recognised on the raw rows without building
        records: a shortcut for cases the matcher would find equal, never a second rule.
        """
        status_map = rules.status_map
        by_revision = rules.by_revision
        items = report.items
        ours_total = theirs_total = Decimal(0)
        ours_count = theirs_count = 0
        # ours rows: (delivery id, key, revision, delivery status, amount, kind, currency, late)
        # theirs rows: (key, revision, amount, status, currency, line, period)
        o = next(mine, None)
        t = next(theirs, None)
        while o is not None or t is not None:
            if t is None or (o is not None and o[1] < t[0]):
                assert o is not None
                key = o[1]
                ours_list = [o]
                o = next(mine, None)
                while o is not None and o[1] == key:
                    ours_list.append(o)
                    o = next(mine, None)
                theirs_list: list[Any] = []
            else:
                key = t[0]
                theirs_list = [t]
                t = next(theirs, None)
                while t is not None and t[0] == key:
                    theirs_list.append(t)
                    t = next(theirs, None)
                ours_list = []
                if o is not None and o[1] == key:
                    ours_list.append(o)
                    o = next(mine, None)
                    while o is not None and o[1] == key:
                        ours_list.append(o)
                        o = next(mine, None)
            if len(ours_list) == 1 and len(theirs_list) == 1:
                a, b = ours_list[0], theirs_list[0]
                kind = a[5]
                if (
                    a[4] == b[2]
                    and not a[7]
                    and b[6] == 0
                    and a[6] == b[4]
                    and (kind is None or b[3] is None or status_map.get(kind, kind) == b[3])
                    and (not by_revision or a[2] == b[1])
                ):
                    ours_count += 1
                    theirs_count += 1
                    if a[4] is not None:
                        amount = Decimal(a[4])
                        ours_total += amount
                        theirs_total += amount
                    continue
            found, compared, counted = match_key(
                key, [_ours(r) for r in ours_list], [to_theirs(r) for r in theirs_list], rules
            )
            if found:
                items.extend(found)
            for mine_row in compared:
                ours_count += 1
                if mine_row.amount is not None:
                    ours_total += mine_row.amount
            for their_row in counted:
                theirs_count += 1
                if their_row.amount is not None:
                    theirs_total += their_row.amount
            if not ours_list and len(theirs_list) != len(counted):
                report.skipped += len(theirs_list) - len(counted)
        report.ours_count, report.ours_amount = ours_count, ours_total
        report.theirs_count, report.theirs_amount = theirs_count, theirs_total

    def _outside_period(self, flow: str, report: Report) -> None:
        """An 'extra' whose key we did send, in another period, is a timing difference."""
        extras = [item for item in report.items if item.category == "extra"]
        if not extras:
            return
        keys = sorted({item.key for item in extras})
        known = self.hub.store.read_sync(lambda conn: queries.keys_on_flow(conn, flow, keys))
        for item in extras:
            if item.key in known:
                item.category = "timing"
                item.detail = "in their records; Interlink sent it outside the period"

    def _store(self, report: Report, started: datetime, actor: str) -> None:
        now = self.hub.clock.now()
        counts = report.counts()
        totals = report.totals()

        def write(conn: Connection) -> int:
            run_id = queries.insert_run(
                conn,
                {
                    "flow": report.flow,
                    "since": report.since,
                    "until": report.until,
                    "source": report.source[:300],
                    "started_at": started,
                    "finished_at": now,
                    "counts": json.dumps(counts),
                    "totals": json.dumps(totals),
                    "complete": report.complete,
                    "problems": json.dumps(report.problems, ensure_ascii=False),
                    "actor": actor,
                },
            )
            queries.insert_items(
                conn,
                [
                    {
                        "run_id": run_id,
                        "category": i.category,
                        "key": i.key,
                        "revision": i.revision,
                        "ours_amount": None if i.ours_amount is None else str(i.ours_amount),
                        "theirs_amount": (
                            None if i.theirs_amount is None else str(i.theirs_amount)
                        ),
                        "ours_status": i.ours_status,
                        "theirs_status": i.theirs_status,
                        "line": i.line,
                        "delivery_id": i.delivery_id,
                        "delivery_status": i.delivery_status,
                        "detail": i.detail,
                    }
                    for i in report.items
                ],
            )
            events.add_event(
                conn,
                now,
                "reconcile_finished",
                {
                    "run": run_id,
                    "complete": report.complete,
                    "differences": report.differences(),
                    "categories": counts,
                },
                self.hub.topology.flows[report.flow].target,
                report.flow,
            )
            return run_id

        report.run_id = self.hub.store.write_sync(write)

    # -- stored runs --------------------------------------------------------------------------

    def runs(
        self, flow: str | None = None, before: int | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        if flow is not None:
            self._flow(flow)
        limit = max(1, min(limit, 500))
        rows = self.hub.store.read_sync(lambda conn: queries.list_runs(conn, flow, before, limit))
        return [_run_json(row) for row in rows]

    def stored(
        self,
        run_id: int,
        category: str | None = None,
        after: int | None = None,
        limit: int | None = 100,
    ) -> dict[str, Any]:
        if category is not None and category not in CATEGORIES:
            raise InputError(f"unknown category {category!r}; use one of {', '.join(CATEGORIES)}")

        def read(conn: Connection) -> tuple[Any, list[Any]]:
            return queries.get_run(conn, run_id), queries.list_items(
                conn, run_id, category, after, limit
            )

        row, items = self.hub.store.read_sync(read)
        if row is None:
            raise NotFound(f"no reconciliation run {run_id}")
        body = _run_json(row)
        body["items"] = [_item_json(i) for i in items]
        body["next_after"] = items[-1].id if limit is not None and len(items) == limit else None
        return body

    # -- repush ---------------------------------------------------------------------------------

    def repush_missing(self, run_id: int, actor: str, dry_run: bool = False) -> dict[str, Any]:
        """Re-push the deliveries a run found missing downstream: dead or delivered ones go back
        to pending through the normal engine (same Idempotency-Key); pending, in-flight and
        held ones are already on their way and are only counted."""
        now = self.hub.clock.now()
        hub = self.hub

        def work(conn: Connection) -> dict[str, Any]:
            run = queries.get_run(conn, run_id)
            if run is None:
                raise NotFound(f"no reconciliation run {run_id}")
            missing = queries.list_items(conn, run_id, "missing", None, None)
            ids = sorted({i.delivery_id for i in missing if i.delivery_id is not None})
            states = queries.delivery_states(conn, ids)
            again = [r for r in states if r.status in REPUSHABLE]
            on_way = [r for r in states if r.status not in REPUSHABLE]
            result = {
                "run": run_id,
                "flow": run.flow,
                "dry_run": dry_run,
                "missing": len(ids),
                "repushed": len(again),
                "on_their_way": len(on_way),
                "on_their_way_by_status": _by_status(on_way),
                "sample": [r.key for r in again[:20]],
            }
            if not dry_run and again:
                hub.requeue(conn, [(r.id, r.flow, r.system) for r in again], now)
                audit.add_audit(conn, now, actor, "reconcile_repush", f"reconcile:{run_id}", result)
            return result

        if dry_run:
            return self.hub.store.read_sync(work)
        result = self.hub.store.write_sync(work)
        hub.wake()
        return result


def _by_status(rows: list[Any]) -> dict[str, int]:
    found: dict[str, int] = {}
    for r in rows:
        found[r.status] = found.get(r.status, 0) + 1
    return found


def _ours(row: tuple[Any, ...]) -> Ours:
    delivery_id, key, revision, status, amount, kind, currency, late = row
    return Ours(
        key,
        revision,
        Decimal(amount) if amount is not None else None,
        kind,
        currency,
        delivery_id,
        status,
        bool(late),
    )


def _run_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "flow": row.flow,
        "period": {
            "since": row.since.isoformat() if row.since else None,
            "until": row.until.isoformat() if row.until else None,
        },
        "source": row.source,
        "started_at": row.started_at.isoformat(),
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
        "complete": bool(row.complete),
        "categories": json.loads(row.counts),
        "totals": json.loads(row.totals),
        "problems": json.loads(row.problems),
        "actor": row.actor,
    }


def _item_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "category": row.category,
        "key": row.key,
        "revision": row.revision,
        "ours_amount": row.ours_amount,
        "theirs_amount": row.theirs_amount,
        "ours_status": row.ours_status,
        "theirs_status": row.theirs_status,
        "detail": row.detail,
        "line": row.line,
        "delivery_id": row.delivery_id,
        "delivery_status": row.delivery_status,
    }


NAME = "reconcile"


def install(hub: Hub) -> None:
    hub.capabilities[NAME] = Reconciler(hub)


def reconcile(hub: Hub) -> Reconciler:
    service: Reconciler = hub.capabilities[NAME]
    return service
