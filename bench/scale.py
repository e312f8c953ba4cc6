"""End-to-end throughput with 1, 2 and 4 worker processes, on SQLite and on PostgreSQL.

    python bench/scale.py [--docs 20000] [--workers 1,2,4] [--stores sqlite,postgresql]
                          [--pg postgresql://postgres@127.0.0.1:5432/test]

For each store and worker count: a fresh store, the documents submitted in batches of 500
(in-process intake), then N `interlink worker` processes started together; the clock runs from
their start until the receiver (its own process) has every document; also the steady rate,
from the receiver's first request to its last (without process start and the first claim).
The bare aiohttp ceiling against the same receiver is measured in the same run. Prints
docs/s and the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from receiver import ReceiverProcess
from throughput import TOKEN, ceiling, payload, reset, stats, topology

from interlink.config import load
from interlink.intake import Item
from interlink.service import Hub
from interlink.features.registry import FEATURES


# The PostgreSQL server benchmarks make their databases on (INTERLINK_TEST_PG, as the tests).
PG_DEFAULT = os.environ.get("INTERLINK_TEST_PG", "postgresql://postgres@127.0.0.1/test")


def pg_database(base: str) -> tuple[str, str]:
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return name, make_url(base).set(database=name).render_as_string(hide_password=False)


def drop_pg(base: str, name: str) -> None:
    import psycopg

    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def run_once(
    store: str, workers: int, docs: int, receiver: str, pg: str
) -> tuple[float, float]:
    """docs/s from the workers' start, and from the first delivery to the last (steady)."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        topology(directory, receiver)
        env = {**os.environ, "BENCH_TOKEN": TOKEN}
        name = None
        if store == "postgresql":
            name, url = pg_database(pg)
            env["INTERLINK_DATABASE_URL"] = url
            os.environ["INTERLINK_DATABASE_URL"] = url
        try:
            hub = Hub(load(directory / "interlink.yaml"), features=FEATURES)
            source = hub.topology.systems["trading"]
            for start in range(0, docs, 500):
                items = [Item("payment_order", payload(i)) for i in range(start, start + 500)]
                await hub.intake.submit(source, items)
            await hub.close()
            async with aiohttp.ClientSession() as session:
                await reset(session, receiver)
                t0 = time.perf_counter()
                procs = [
                    subprocess.Popen(
                        [sys.executable, "-m", "interlink.cli", "worker"],
                        cwd=directory,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                    for _ in range(workers)
                ]
                try:
                    while int((seen := await stats(session, receiver))["unique"]) < docs:  # type: ignore[call-overload]
                        await asyncio.sleep(0.05)
                    elapsed = time.perf_counter() - t0
                    steady = float(seen["last"]) - float(seen["first"])  # type: ignore[arg-type]
                finally:
                    for p in procs:
                        p.terminate()
                    for p in procs:
                        p.wait(20)
            return docs / elapsed, docs / steady
        finally:
            os.environ.pop("INTERLINK_DATABASE_URL", None)
            if name:
                drop_pg(pg, name)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--pg", default=PG_DEFAULT)
    args = parser.parse_args()
    os.environ["BENCH_TOKEN"] = TOKEN
    print(
        f"machine: {os.cpu_count()} cores; {args.docs:,} documents; worker processes started "
        "after intake, timed until the receiver has them all (includes process start, ~0.7 s)"
    )
    with ReceiverProcess() as receiver:
        ceil = await ceiling(receiver.url, args.docs)
        print(f"bare aiohttp ceiling        {ceil:8,.0f} POST/s")
        for store in args.stores.split(","):
            for n in (int(w) for w in args.workers.split(",")):
                rate, steady = await run_once(store, n, args.docs, receiver.url, args.pg)
                print(
                    f"{store:10s} {n} worker(s)     {rate:8,.0f} docs/s   {rate / ceil:5.2f}x "
                    f"ceiling   first to last delivery {steady:8,.0f}/s {steady / ceil:5.2f}x"
                )


if __name__ == "__main__":
    from interlink import runner

    runner.run(main())
