"""What one delivery and one accepted document cost, on SQLite and on PostgreSQL.

    python bench/cost.py [--docs 20000] [--stores sqlite,postgresql]
                         [--pg postgresql://postgres@127.0.0.1:5432/test]
                         [--transport default|aiohttp|reqwest|none]

For each store, fresh: the documents submitted in process in batches of 500 (intake), then
``Engine.run`` (as ``serve`` runs it) until the receiver (its own process) has them all and the
engine has stopped (delivery). Prints per document and phase: this process's CPU (all threads,
the event loop's, the store writer's), SQL statements by kind (SQLAlchemy events; a row of an
executemany counts as one; PostgreSQL's pool pre-ping at each checkout), bytes written and the
store's growth; then the store at rest, by table. Bytes written: SQLite's -wal file, with
automatic checkpoints off and a TRUNCATE checkpoint between phases; PostgreSQL's WAL for the
bench's database alone (records on its relations, autovacuum's too, and its transactions'
commits, via pg_waldump on the server's pg_wal; n/a if unreadable) and for the whole server.
Measuring runs on connections of its own, uncounted. Not a test: numbers go to docs/benchmarks.md.

``--transport none`` answers every delivery 200 in process, without a network: the engine and
the store alone, so that the difference to a real transport is what the HTTP client costs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
from sqlalchemy import Engine, event
from sqlalchemy.pool import Pool

sys.path.insert(0, str(Path(__file__).resolve().parent))
from receiver import ReceiverProcess
from scale import PG_DEFAULT, drop_pg, pg_database
from throughput import TOKEN, payload, reset, stats, topology

from interlink.config import load
from interlink.intake import Item
from interlink.service import Hub
from interlink.features.registry import FEATURES
from interlink.transports.base import Request, Response, Transport


class NullTransport:
    """Answers 200 at once: what a delivery costs without any HTTP."""

    def __init__(self) -> None:
        self.sent = 0

    async def send(self, request: Request) -> Response:
        self.sent += 1
        return Response(status=200, headers={}, body=b"", elapsed_ms=0.0)

    async def close(self) -> None:
        return None


def make_transport(name: str) -> Transport | None:
    if name == "none":
        return NullTransport()
    if name == "default":
        return None  # what the hub picks for itself
    from interlink import transports

    return transports.by_name(name)


TRANSACTION = "BEGIN, COMMIT/ROLLBACK"
PING = "SELECT 1 (pool pre-ping)"
# First match wins; matched against the start of the statement's text.
KINDS = [
    ("SAVEPOINT, RELEASE", re.compile(r"SAVEPOINT|RELEASE|ROLLBACK TO")),
    (
        "claim UPDATE .. RETURNING",
        re.compile(r"UPDATE deliveries SET .* RETURNING|WITH chosen AS", re.S),
    ),
    ("claim SELECT (SQLite)", re.compile(r"SELECT d\.id, d\.document_id")),
    ("claim lease UPDATE (SQLite)", re.compile(r"UPDATE deliveries SET status = 'in_flight'")),
    ("record UPDATE", re.compile(r"UPDATE deliveries AS d|WITH v\(b_id")),
    ("payload SELECT", re.compile(r"SELECT documents\.id, documents\.type, documents\.payload")),
    ("attempts INSERT", re.compile(r"INSERT INTO attempts")),
    ("documents INSERT", re.compile(r"INSERT INTO documents")),
    ("deliveries INSERT", re.compile(r"INSERT INTO deliveries")),
    ("NOTIFY", re.compile(r"NOTIFY")),
    ("intake lookup SELECT", re.compile(r'SELECT (k\.|documents\.identity|documents\."key")')),
    ("housekeeping SELECT", re.compile(r"SELECT|WITH")),
    ("housekeeping UPDATE/INSERT/DELETE", re.compile(r"")),
]
ROWS = " (executemany rows)"
PG_TABLES = "FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'"
CORE = ("documents", "deliveries", "attempts")
RECORD = re.compile(r"len \(rec/tot\):\s*\d+/\s*(\d+), tx:\s*(\d+)")
COUNTS: Counter[str] = Counter()


def count_statements() -> None:
    @event.listens_for(Engine, "before_cursor_execute")
    def _statement(_c: Any, _cur: Any, text: str, params: Any, _ctx: Any, many: bool) -> None:
        if text.startswith("BEGIN"):
            return  # SQLite's BEGIN IMMEDIATE: counted by the "begin" event below
        label = next(label for label, kind in KINDS if kind.match(text.lstrip()))
        # executemany runs the statement once per row (SQLite; psycopg, pipelined)
        COUNTS[label + ROWS if many else label] += len(params) if many else 1

    for name in ("begin", "commit", "rollback"):
        event.listen(Engine, name, lambda *_: COUNTS.update([TRANSACTION]))

    @event.listens_for(Pool, "connect")
    def _no_autocheckpoint(dbapi_connection: Any, _record: Any) -> None:
        if isinstance(dbapi_connection, sqlite3.Connection):
            dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")

    @event.listens_for(Pool, "checkout")
    def _checkout(dbapi_connection: Any, *_: Any) -> None:
        if not isinstance(dbapi_connection, sqlite3.Connection):
            COUNTS[PING] += 1  # the store opens PostgreSQL with pool_pre_ping


def cpu() -> tuple[float, float, float]:
    """Seconds of CPU: the process, this (event loop) thread, the store's writer thread."""
    writer = 0.0
    for thread in threading.enumerate():
        if thread.name == "interlink-writer" and thread.native_id is not None:
            stat = Path(f"/proc/self/task/{thread.native_id}/stat").read_text()
            utime, stime = stat.rsplit(")", 1)[1].split()[11:13]
            writer = (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")
    return time.process_time(), time.thread_time(), writer


class Meter:
    """Reads what the store has written and holds, on a connection SQLAlchemy doesn't see. On
    PostgreSQL that connection holds a temporary replication slot: the server keeps the WAL
    for pg_waldump (other databases' DROP DATABASE forces checkpoints) until it closes."""

    def __init__(self, directory: Path, pg_url: str | None) -> None:
        self.db = directory / "bench.db"
        self.wal_total = 0
        self.pg = psycopg.connect(pg_url, autocommit=True) if pg_url else None
        if self.pg:
            slot = f"bench_cost_{os.getpid()}"
            self.pg.execute(f"SELECT pg_create_physical_replication_slot('{slot}', true, true)")

    def close(self) -> None:
        if self.pg:
            self.pg.close()

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        if self.pg:
            return list(self.pg.execute(sql))
        with contextlib.closing(sqlite3.connect(self.db)) as lite:
            return list(lite.execute(sql))

    def mark(self) -> tuple[Any, int]:
        """Where the WAL is (PostgreSQL: its LSN; SQLite: bytes so far), the store's size."""
        if self.pg:
            lsn, size = self.rows(
                f"SELECT pg_current_wal_lsn()::text, sum(pg_total_relation_size(oid)) {PG_TABLES}"
            )[0]
            return lsn, int(size)
        self.wal_total += Path(f"{self.db}-wal").stat().st_size
        if self.rows("PRAGMA wal_checkpoint(TRUNCATE)")[0][0]:  # busy
            print("(a checkpoint was busy: the SQLite sizes are off)")
        return self.wal_total, self.db.stat().st_size

    def wal(self, start: Any, end: Any) -> tuple[int | None, int]:
        """WAL bytes between two marks: this database's (None if unreadable), the server's."""
        if not self.pg:
            return end - start, end - start
        [(server, data, major, oid)] = self.rows(
            f"SELECT pg_wal_lsn_diff('{end}', '{start}')::bigint, "
            "current_setting('data_directory'), current_setting('server_version_num')::int / 10000,"
            " (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        tool = shutil.which("pg_waldump") or f"/usr/lib/postgresql/{major}/bin/pg_waldump"
        command = [tool, "-p", f"{data}/pg_wal", "-s", start, "-e", end]
        try:
            out = subprocess.run(command, capture_output=True, text=True).stdout
        except OSError:
            out = ""
        if not out:
            return None, server
        ours, xids, loose = 0, set(), []
        for line in out.splitlines():
            if (record := RECORD.search(line)) is None:
                continue
            size, xid, dbs = int(record[1]), record[2], re.findall(r"rel \d+/(\d+)/", line)
            if str(oid) in dbs:
                ours += size
                xids.add(xid)
            elif not dbs and xid != "0":  # a commit: ours if it or a subtransaction is
                subxacts = re.search(r"subxacts: ([\d ]+)", line)
                loose.append((size, {xid, *(subxacts[1].split() if subxacts else ())}))
        return ours + sum(size for size, ids in loose if ids & xids), server

    def at_rest(self) -> tuple[int, dict[str, int]]:
        """The store's size (SQLite: the checkpointed file), and by table with its indexes."""
        sql = f"SELECT relname, pg_total_relation_size(oid) {PG_TABLES}"
        if not self.pg:
            sql = (
                "SELECT coalesce(m.tbl_name, s.name), sum(s.pgsize) FROM dbstat AS s "
                "LEFT JOIN sqlite_schema AS m ON m.name = s.name GROUP BY 1"
            )
        tables = {str(name): int(size) for name, size in self.rows(sql)}
        return self.mark()[1], tables


@dataclass
class Phase:
    cpu: tuple[float, ...]
    statements: Counter[str]
    wal: tuple[int | None, int]
    growth: int


async def measure(meter: Meter, work: Callable[[], Awaitable[None]]) -> Phase:
    wal0, size0 = meter.mark()
    counts0, cpu0 = COUNTS.copy(), cpu()
    await work()
    cpu1, counts1 = cpu(), COUNTS.copy()
    wal1, size1 = meter.mark()
    spent = tuple(b - a for a, b in zip(cpu0, cpu1, strict=True))
    return Phase(spent, counts1 - counts0, meter.wal(wal0, wal1), size1 - size0)


async def report(store: str, hub: Hub, meter: Meter, docs: int, receiver: str) -> None:
    source = hub.topology.systems["trading"]

    async def intake() -> None:
        for start in range(0, docs, 500):
            batch = range(start, min(docs, start + 500))
            await hub.intake.submit(source, [Item("payment_order", payload(i)) for i in batch])

    async with aiohttp.ClientSession() as session:
        await reset(session, receiver)

        async def deliver() -> None:
            stop = asyncio.Event()
            task = asyncio.create_task(hub.engine.run(stop))
            null = hub.engine.dispatcher.transport
            try:
                while not task.done():
                    if isinstance(null, NullTransport):
                        done = null.sent
                    else:
                        seen = await stats(session, receiver)
                        done = int(seen["unique"])  # type: ignore[call-overload]
                    if done >= docs:
                        break
                    await asyncio.sleep(0.05)
            finally:
                stop.set()
                await task

        phases = [await measure(meter, intake), await measure(meter, deliver)]
    delivered, stored = meter.rows(
        "SELECT (SELECT count(*) FROM deliveries WHERE status = 'delivered'), "
        "(SELECT avg(length(payload)) FROM documents)"
    )[0]
    print(f"\n{store}: {docs:,} documents, {delivered:,} delivered, payload {stored:.0f} B stored")
    print(f"{'per document':38s}{'intake':>17s}{'delivery':>17s}")

    def row(label: str, values: list[Any], fmt: str = "{:,.1f}") -> None:
        text = [fmt.format(v / docs) if v is not None else "n/a" for v in values]
        print(f"{label:38s}" + "".join(f"{t:>17s}" for t in text))

    for i, label in enumerate(["CPU µs, all threads", "  event loop thread", "  store writer"]):
        row(label, [p.cpu[i] * 1e6 for p in phases])
    row("SQL statements", [p.statements.total() for p in phases], "{:.4f}")
    for label in [TRANSACTION, PING, *(k + m for k, _ in KINDS for m in ("", ROWS))]:
        counts = [p.statements[label] for p in phases]
        if any(counts):
            print(f"  {label:36s}" + "".join(f"{f'{c / docs:.4f} ({c:,})':>17s}" for c in counts))
    row("bytes written (WAL)", [p.wal[0] for p in phases], "{:,.0f}")
    if store == "postgresql":
        row("  WAL of the whole server", [p.wal[1] for p in phases], "{:,.0f}")
    row("store growth, bytes", [p.growth for p in phases], "{:,.0f}")
    total, tables = meter.at_rest()
    rest = sum(size for table, size in tables.items() if table not in CORE)
    parts = ", ".join(f"{t} {tables.get(t, 0) / docs:,.0f}" for t in CORE)
    print(f"at rest, bytes per document: {total / docs:,.0f}")
    print(f"  by table: {parts}, all others {rest / docs:,.0f}")


async def run_store(store: str, docs: int, receiver: str, pg: str, transport: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        topology(directory, receiver)
        name = url = None
        if store == "postgresql":
            name, url = pg_database(pg)
            os.environ["INTERLINK_DATABASE_URL"] = url
        try:
            hub = Hub(
                load(directory / "interlink.yaml"),
                transport=make_transport(transport),
                features=FEATURES,
            )
            try:
                with contextlib.closing(Meter(directory, url)) as meter:
                    await report(store, hub, meter, docs, receiver)
            finally:
                await hub.close()
        finally:
            os.environ.pop("INTERLINK_DATABASE_URL", None)
            if name:
                drop_pg(pg, name)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--pg", default=PG_DEFAULT)
    parser.add_argument("--transport", default="default", help="default|aiohttp|reqwest|none")
    args = parser.parse_args()
    os.environ["BENCH_TOKEN"] = TOKEN
    count_statements()
    print(
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; CPU is this process;"
        f" transport: {args.transport}"
    )
    with ReceiverProcess() as receiver:
        for store in args.stores.split(","):
            await run_store(store, args.docs, receiver.url, args.pg, args.transport)


if __name__ == "__main__":
    from interlink import runner

    runner.run(main())
