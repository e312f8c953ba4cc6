"""Outbox polling into intake, on MariaDB and PostgreSQL upstreams.

    python bench/sources.py [--rows 100000] [--batch 5000] [--upstreams mysql,postgresql]
                            [--latency-seconds 20] [--no-latency]

Throughput: fills an outbox table with N rows (multi-row INSERTs: a fixture, not the
product path), then times `Sources.poll` batch after batch until it is caught up: rows per
second from the upstream into intake (documents and deliveries stored, cursor moved, each
batch one transaction of the SQLite store).

Latency: `interlink worker` runs in its own process with the source polling every
`--interval`; a writer inserts rows at 500 rows/s, each payload stamped with its
time.monotonic() before the INSERT commits, and the receiver (its own process) records the
time from that stamp to the delivery's arrival. Prints p50/p99/max.

Upstreams: INTERLINK_TEST_MYSQL_URL (default mysql+pymysql://root@127.0.0.1:3306/test) and
INTERLINK_TEST_PG (default postgresql://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from pathlib import Path

import aiohttp
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))

from receiver import ReceiverProcess

from interlink.config import load
from interlink.features.registry import FEATURES
from interlink.features.sources.service import sources
from interlink.service import Hub

URLS = {
    "mysql": os.environ.get("INTERLINK_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
    "postgresql": "postgresql+psycopg://"
    + os.environ.get("INTERLINK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test").split(
        "://", 1
    )[1],
}


def topology(directory: Path, table: str, receiver: str, batch: int, interval: str) -> Path:
    path = directory / "interlink.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            timezone: UTC
            database: sqlite:///bench.db
            systems:
              trading:
                sources:
                  outbox:
                    kind: outbox
                    url_env: BENCH_SOURCE_DB
                    table: {table}
                    batch: {batch}
                    interval: {interval}
              treasury:
                url: {receiver}
                concurrency: 64
            documents:
              payment_order: {{key: order_no}}
            flows:
              trading-treasury:
                from: trading
                to: treasury
                document: payment_order
                path: /payments
            engine:
              batch: 1000
              concurrency: 64
            """
        )
    )
    return path


def create(engine: sa.Engine, kind: str, table: str) -> None:
    ident = "BIGINT AUTO_INCREMENT PRIMARY KEY" if kind == "mysql" else "BIGSERIAL PRIMARY KEY"
    payload = "JSON" if kind == "mysql" else "JSONB"
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                f"CREATE TABLE {table} (id {ident}, aggregatetype VARCHAR(100), "
                f"aggregateid VARCHAR(100), type VARCHAR(100), payload {payload})"
            )
        )


def fill(engine: sa.Engine, table: str, start: int, n: int, stamp: bool = False) -> None:
    rows = []
    for i in range(start, start + n):
        body: dict[str, object] = {
            "order_no": f"PO-{i:08d}", "amount": "100.00", "currency": "CNY", "kind": "pay",
        }  # fmt: skip
        if stamp:
            body["t0"] = time.monotonic()
        rows.append({"t": "payment_order", "k": body["order_no"], "p": json.dumps(body)})
    with engine.begin() as conn:
        # The driver's own executemany with %s: PyMySQL sends one multi-row INSERT.
        conn.exec_driver_sql(
            f"INSERT INTO {table} (aggregatetype, aggregateid, type, payload) "
            "VALUES (%s, %s, %s, %s)",
            [(r["t"], r["k"], "created", r["p"]) for r in rows],
        )


def throughput(kind: str, rows: int, batch: int) -> tuple[float, float]:
    """Rows per second of wall time, and per second of this process's CPU time (what a
    machine not shared with others would come nearer to)."""
    engine = sa.create_engine(URLS[kind])
    table = f"bench_outbox_{uuid.uuid4().hex[:8]}"
    create(engine, kind, table)
    try:
        for start in range(0, rows, 10_000):
            fill(engine, table, start, min(10_000, rows - start))
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["BENCH_SOURCE_DB"] = URLS[kind]
            hub = Hub(load(topology(Path(tmp), table, "http://127.0.0.1:9", batch, "1s")),
                      features=FEATURES)  # fmt: skip
            service = sources(hub)
            t0, cpu0 = time.perf_counter(), time.process_time()
            taken = 0
            while True:
                result = service.poll("outbox")
                taken += result["accepted"]
                if result["read"] < batch:
                    break
            elapsed = time.perf_counter() - t0
            cpu = time.process_time() - cpu0
            assert taken == rows, (taken, rows)
            service.close()
            hub.store.close()
        return rows / elapsed, rows / cpu
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE {table}"))
        engine.dispose()


async def latency(kind: str, rate: int, seconds: float, interval: str) -> dict[str, float]:
    engine = sa.create_engine(URLS[kind])
    table = f"bench_outbox_{uuid.uuid4().hex[:8]}"
    create(engine, kind, table)
    n = int(rate * seconds)
    try:
        with ReceiverProcess() as receiver, tempfile.TemporaryDirectory() as tmp:
            path = topology(Path(tmp), table, receiver.url, 1000, interval)
            worker = subprocess.Popen(
                [sys.executable, "-m", "interlink.cli", "worker", "-c", str(path)],
                env={**os.environ, "BENCH_SOURCE_DB": URLS[kind]},
                stdin=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )
            try:
                time.sleep(3)  # the worker starting up, before the clock runs

                def write() -> None:
                    # 50 rows every 100 ms: 500 rows/s in small transactions.
                    start = time.monotonic()
                    for i, at in enumerate(range(0, n, rate // 10)):
                        delay = start + i / 10 - time.monotonic()
                        if delay > 0:
                            time.sleep(delay)  # pacing the load
                        fill(engine, table, at, min(rate // 10, n - at), stamp=True)

                writer = threading.Thread(target=write)
                writer.start()
                async with aiohttp.ClientSession() as session:
                    deadline = time.monotonic() + seconds + 60
                    while time.monotonic() < deadline:
                        async with session.get(receiver.url + "/_stats") as r:
                            seen = await r.json()
                        if int(seen["unique"]) >= n:
                            break
                        await asyncio.sleep(0.2)
                writer.join()
            finally:
                worker.terminate()
                worker.wait(20)
        lat = sorted(float(x) * 1000 for x in seen["latencies"])
        return {
            "delivered": len(lat),
            "p50": statistics.median(lat),
            "p99": lat[int(len(lat) * 0.99) - 1],
            "max": lat[-1],
        }
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE {table}"))
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--upstreams", default="mysql,postgresql")
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--interval", default="250ms")
    parser.add_argument("--no-latency", action="store_true")
    args = parser.parse_args()
    for kind in args.upstreams.split(","):
        rate, per_cpu = throughput(kind, args.rows, args.batch)
        print(
            f"{kind}: outbox → intake {rate:,.0f} rows/s ({per_cpu:,.0f} per CPU second of "
            f"the poller; {args.rows} rows, batch {args.batch}, SQLite store)"
        )
        if not args.no_latency:
            lat = asyncio.run(latency(kind, 500, args.latency_seconds, args.interval))
            print(
                f"{kind}: source → downstream at 500 rows/s, poll interval {args.interval}: "
                f"p50 {lat['p50']:.0f} ms, p99 {lat['p99']:.0f} ms, max {lat['max']:.0f} ms "
                f"({lat['delivered']} delivered)"
            )


if __name__ == "__main__":
    main()
