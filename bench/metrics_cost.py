"""What a scrape of the backlog gauges costs with a million deliveries in the store.

    python bench/metrics_cost.py [--deliveries 1000000] [--stores sqlite,postgresql]
                                 [--pg postgresql://postgres@127.0.0.1:5432/test]
                                 [--pg-intake 20000] [--drop-index]

Loads the backlog with bench/throughput.py's loader (the flow paused, so every delivery is
held; on PostgreSQL the first --pg-intake through intake, the rest copied in SQL), then times
the gauges' read (``interlink.metrics.read_backlog``: one grouped query, the circuits, the
open windows) and a whole uncached scrape of the collector, in two shapes:

1. all N deliveries held (a downstream down for days: the worst case for the query);
2. all but 1 % delivered (the usual shape: delivered rows are most of the table).

Prints the figures and the query plan. Not a test: numbers go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import Connection, text, update
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import load_backlog, topology

from interlink.config import load
from interlink.features.registry import FEATURES
from interlink.metrics import BacklogCollector, read_backlog
from interlink.service import Hub
from interlink.store.queries import backlog
from interlink.store.schema import deliveries

PG_DEFAULT = os.environ.get("INTERLINK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
PG_DATABASE = "interlink_bench_metrics"
RUNS = 7


def on_database(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


def timed(fn: object, runs: int = RUNS) -> tuple[float, float]:
    """Median and best of ``runs`` calls, in milliseconds (the first call warms caches)."""
    assert callable(fn)
    fn()
    seconds = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - t0)
    return statistics.median(seconds) * 1000, min(seconds) * 1000


def plan(hub: Hub) -> str:
    def explain(conn: Connection) -> str:
        statement = backlog.backlog_statement().compile(
            dialect=conn.dialect, compile_kwargs={"literal_binds": True}
        )
        prefix = "EXPLAIN QUERY PLAN " if conn.dialect.name == "sqlite" else "EXPLAIN "
        rows = conn.execute(text(prefix + str(statement)))
        return "\n".join("    " + " ".join(str(c) for c in row) for row in rows)

    return hub.store.read_sync(explain)


def measure(hub: Hub, label: str) -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BacklogCollector(hub, ttl=0))
    read_ms, read_best = timed(lambda: read_backlog(hub))
    scrape_ms, _ = timed(lambda: generate_latest(registry))
    cached = BacklogCollector(hub, ttl=3600)
    cached_registry = CollectorRegistry(auto_describe=False)
    cached_registry.register(cached)
    cached_ms, _ = timed(lambda: generate_latest(cached_registry), runs=100)
    print(
        f"  {label}: read {read_ms:.1f} ms (best {read_best:.1f}); uncached scrape "
        f"{scrape_ms:.1f} ms; cached scrape {cached_ms:.2f} ms"
    )


def grow(conn: Connection, have: int, n: int) -> None:
    """Copies of the loaded deliveries, each under new keys, up to ``n`` rows (PostgreSQL).

    Intake on PostgreSQL loads about 300 documents/s on this shared machine, so a million
    would take an hour; the gauges read only the deliveries table, so copies measure the same.
    """
    columns = [c.name for c in deliveries.columns if c.name != "id"]
    chosen = ", ".join("d.key || '-' || g.n" if c == "key" else f"d.{c}" for c in columns)
    copies = (n - have) // have
    conn.execute(
        text(
            f"INSERT INTO deliveries ({', '.join(columns)}) SELECT {chosen} "
            f"FROM deliveries d CROSS JOIN generate_series(1, {copies}) AS g(n)"
        )
    )


async def run(store: str, n: int, pg: str, pg_intake: int, drop_index: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        if store == "postgresql":
            with psycopg.connect(pg, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
                admin.execute(f'CREATE DATABASE "{PG_DATABASE}"')
            os.environ["INTERLINK_DATABASE_URL"] = on_database(pg, PG_DATABASE)
        else:
            os.environ.pop("INTERLINK_DATABASE_URL", None)
        # The receiver is never called: the flow stays paused.
        hub = Hub(load(topology(directory, "http://127.0.0.1:9")), features=FEATURES)
        try:
            through_intake = n if store == "sqlite" else min(n, pg_intake)
            loaded = await load_backlog(hub, through_intake)
            print(f"{store}: {through_intake:,} deliveries loaded through intake in {loaded:.0f} s")
            if through_intake < n:
                t0 = time.perf_counter()
                hub.store.write_sync(lambda conn: grow(conn, through_intake, n))
                print(f"  copied in SQL to {n:,} in {time.perf_counter() - t0:.0f} s")
            if drop_index:
                hub.store.write_sync(
                    lambda conn: conn.execute(text("DROP INDEX ix_deliveries_backlog"))
                )
                print("  without ix_deliveries_backlog")
            if store == "postgresql":
                hub.store.write_sync(lambda conn: conn.execute(text("ANALYZE deliveries")))
            measure(hub, f"{n:,} held")

            def deliver_most(conn: Connection) -> None:
                conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id % 100 != 0)
                    .values(status="delivered", reason=None)
                )
                if conn.dialect.name == "postgresql":
                    conn.execute(text("ANALYZE deliveries"))

            hub.store.write_sync(deliver_most)
            if store == "postgresql":
                # VACUUM runs outside a transaction: the dead row versions the update left.
                with psycopg.connect(on_database(pg, PG_DATABASE), autocommit=True) as conn:
                    conn.execute("VACUUM ANALYZE deliveries")
            measure(hub, f"{n // 100:,} held, {n - n // 100:,} delivered")
            print("  query plan:\n" + plan(hub))
        finally:
            await hub.close()
            if store == "postgresql":
                os.environ.pop("INTERLINK_DATABASE_URL", None)
                with psycopg.connect(pg, autocommit=True) as admin:
                    admin.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=1_000_000)
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--pg", default=PG_DEFAULT)
    parser.add_argument(
        "--pg-intake",
        type=int,
        default=20_000,
        help="deliveries loaded through intake on PostgreSQL; the rest are copies made in SQL",
    )
    parser.add_argument(
        "--drop-index",
        action="store_true",
        help="measure without ix_deliveries_backlog, for the comparison in docs/benchmarks.md",
    )
    args = parser.parse_args()
    for store in args.stores.split(","):
        await run(store.strip(), args.deliveries, args.pg, args.pg_intake, args.drop_index)


if __name__ == "__main__":
    asyncio.run(main())
