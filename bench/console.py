"""Console page render time on a flow with 1,000,000 deliveries, on embedded SQLite.

    python bench/console.py [--deliveries 1000000] [--runs 20]

Fills a fresh store directly (a benchmark fixture: rows inserted in batches, not through
intake): N deliveries over the last 30 days (97% delivered, 2% dead, 1% pending), one attempt
each. Then serves the app with uvicorn on loopback, signs in, and times GET requests end to
end (server render plus loopback HTTP):

- the flow page, first page (newest 50 deliveries, the 24-hour chart, the audit);
- a deep page through the id cursor (``before=`` near the oldest rows);
- the flow page filtered to dead deliveries, first and deep;
- the overview (graph, per-flow counts over every delivery).

Prints the first (cold) request and the median and 95th percentile of the rest (after two
more warm-up requests) of each. The target for the flow page is under 200 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import uvicorn
from sqlalchemy import Connection, func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from interlink.config import load
from interlink.service import Hub
from interlink.store.schema import attempts, deliveries
from interlink.web.api import create_app
from interlink.features.registry import FEATURES

FLOW = "orders-ledger"
TOPOLOGY = """\
timezone: Asia/Shanghai
database: sqlite:///bench.db
systems:
  orders: {title: Order system}
  ledger: {title: Ledger, url: "http://127.0.0.1:9"}
documents:
  order: {key: order_no}
flows:
  orders-ledger: {from: orders, to: ledger, document: order, path: /orders}
users:
  - {name: bench, role: operator, password_env: BENCH_PASSWORD}
"""
BATCH = 50_000


def fill(hub: Hub, total: int) -> None:
    now = datetime.now(UTC)
    start = now - timedelta(days=30)
    step = (now - start) / total

    for first in range(0, total, BATCH):
        rows, tries = [], []
        for i in range(first, min(first + BATCH, total)):
            at = start + step * i
            kind = i % 100
            status = "dead" if kind < 2 else "pending" if kind == 2 else "delivered"
            rows.append(
                {
                    "id": i + 1,
                    "document_id": f"D{i:025d}",
                    "flow": FLOW,
                    "system": "ledger",
                    "key": f"ORD-{i:08d}",
                    "revision": 1,
                    "status": status,
                    "reason": "rejected" if status == "dead" else None,
                    "attempts": 0 if status == "pending" else 1,
                    "failures": 1 if status == "dead" else 0,
                    "next_at": at if status == "pending" else None,
                    "lease_until": None,
                    "first_failure_at": None,
                    "deadline": None,
                    "probe": False,
                    "created_at": at,
                    "updated_at": at,
                    "delivered_at": at if status == "delivered" else None,
                    "last_error": "HTTP 422: account closed" if status == "dead" else None,
                }
            )
            if status != "pending":
                tries.append(
                    {
                        "delivery_id": i + 1,
                        "started_at": at,
                        "elapsed_ms": 12.5,
                        "status_code": 422 if status == "dead" else 200,
                        "outcome": "rejected" if status == "dead" else "delivered",
                        "detail": "",
                        "response": "account closed" if status == "dead" else "ok",
                        "probe": False,
                    }
                )

        def write(conn: Connection, rows: list = rows, tries: list = tries) -> None:
            conn.execute(deliveries.insert(), rows)
            conn.execute(attempts.insert(), tries)

        hub.store.write_sync(write)


async def timed(session: aiohttp.ClientSession, url: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs + 2):
        began = time.perf_counter()
        async with session.get(url, allow_redirects=False) as response:
            body = await response.read()
            assert response.status == 200, (response.status, body[:300])
        times.append((time.perf_counter() - began) * 1000)
    return times  # the first is cold: nothing cached yet


async def measure(hub: Hub, runs: int) -> None:
    app = create_app(hub, workers=False)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    base = f"http://127.0.0.1:{port}"
    try:
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as session:
            async with session.post(
                base + "/login",
                data={"username": "bench", "password": os.environ["BENCH_PASSWORD"]},
                allow_redirects=False,
            ) as r:
                assert r.status == 303, await r.text()
            deep = 1_000  # a cursor near the oldest rows
            pages = [
                ("flow page, first 50", f"/flows/{FLOW}"),
                ("flow page, deep (cursor)", f"/flows/{FLOW}?before={deep}"),
                ("flow page, dead, first 50", f"/flows/{FLOW}?status=dead"),
                ("flow page, dead, deep", f"/flows/{FLOW}?status=dead&before={deep * 10}"),
                ("overview (graph + counts)", "/"),
            ]
            print(f"{'page':32} {'cold ms':>8} {'median ms':>10} {'p95 ms':>8}")
            for label, path in pages:
                every = await timed(session, base + path, runs)
                cold, times = every[0], sorted(every[2:])
                p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
                print(f"{label:32} {cold:8.1f} {statistics.median(times):10.1f} {p95:8.1f}")
    finally:
        server.should_exit = True
        await task
        sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument(
        "--dir", type=Path, help="keep the store in this folder and reuse it when filled"
    )
    args = parser.parse_args()
    os.environ.setdefault("BENCH_PASSWORD", "bench-password")
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.dir or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "interlink.yaml"
        path.write_text(TOPOLOGY)
        hub = Hub(load(path), features=FEATURES)
        try:
            have = hub.store.read_sync(
                lambda conn: conn.execute(select(func.count()).select_from(deliveries)).scalar()
            )
            if have != args.deliveries:
                if have:
                    raise SystemExit(f"{folder} holds {have:,} deliveries; use another --dir")
                began = time.perf_counter()
                fill(hub, args.deliveries)
                took = time.perf_counter() - began
                print(f"filled {args.deliveries:,} deliveries in {took:.1f} s")
            asyncio.run(measure(hub, args.runs))
        finally:
            asyncio.run(hub.close())


if __name__ == "__main__":
    main()
