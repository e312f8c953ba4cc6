"""Throughput, intake and latency of the core, on embedded SQLite.

    python bench/throughput.py [--docs 20000] [--rss 1000000]

Runs, in one go, against a receiver in its own process on loopback:

1. the bare ceiling: a plain aiohttp client POSTing the documents, no durability;
2. Interlink end to end: bulk submit, then the engine until every delivery is delivered;
3. intake alone, through the HTTP API in batches of 500;
4. submit-to-delivered latency at a steady 500 docs/s through the HTTP API with workers on;
5. with --rss N: peak RSS of a worker while N deliveries are pending.

Prints the figures and the ratio to the ceiling. Not a test: numbers go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from receiver import ReceiverProcess

from interlink.config import load
from interlink.intake import Item
from interlink.service import Hub
from interlink.features.registry import FEATURES

TOKEN = "bench-token"
# `interlink serve` refuses to start without a management credential; reads use it too.
ADMIN_TOKEN = "bench-admin-token"
SERVE_ENV = {"BENCH_TOKEN": TOKEN, "INTERLINK_ADMIN_TOKEN": ADMIN_TOKEN}
CONCURRENCY = 64


def topology(directory: Path, url: str, rate: str | None = None) -> Path:
    path = directory / "interlink.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            timezone: UTC
            database: sqlite:///bench.db
            systems:
              trading: {{token_env: BENCH_TOKEN}}
              treasury:
                url: {url}
                concurrency: {CONCURRENCY}
                {"rate: " + rate if rate else ""}
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
              concurrency: {CONCURRENCY}
            """
        )
    )
    return path


def payload(i: int) -> dict[str, object]:
    return {"order_no": f"PO-{i:08d}", "amount": "100.00", "currency": "CNY", "kind": "pay"}


async def stats(session: aiohttp.ClientSession, url: str) -> dict[str, object]:
    async with session.get(url + "/_stats") as r:
        return dict(await r.json())


async def reset(session: aiohttp.ClientSession, url: str) -> None:
    async with session.post(url + "/_reset") as r:
        await r.read()


async def ceiling(url: str, n: int) -> float:
    """A plain aiohttp client with no durability: the most this receiver and client can do."""
    bodies = [orjson.dumps(payload(i)) for i in range(n)]
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:
        await reset(session, url)
        queue = iter(range(n))

        async def worker() -> None:
            for i in queue:
                async with session.post(
                    url + "/payments",
                    data=bodies[i],
                    headers={"Content-Type": "application/json", "Idempotency-Key": str(i)},
                ) as r:
                    await r.read()

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        elapsed = time.perf_counter() - t0
    return n / elapsed


async def end_to_end(directory: Path, url: str, n: int) -> tuple[float, float, float]:
    """Bulk submit (in-process intake, batches of 500), then deliver everything."""
    async with aiohttp.ClientSession() as session:
        await reset(session, url)
    hub = Hub(load(topology(directory, url)), features=FEATURES)
    source = hub.topology.systems["trading"]
    t0 = time.perf_counter()
    for start in range(0, n, 500):
        items = [Item("payment_order", payload(i)) for i in range(start, min(n, start + 500))]
        await hub.intake.submit(source, items)
    t_submit = time.perf_counter() - t0
    stop = asyncio.Event()
    t1 = time.perf_counter()
    task = asyncio.create_task(hub.engine.run(stop))
    while True:
        await asyncio.sleep(0.05)  # a benchmark polling for completion, not a test
        flows = (await asyncio.to_thread(hub.status))["flows"]["trading-treasury"]
        if flows["delivered"] >= n:
            break
    t_deliver = time.perf_counter() - t1
    stop.set()
    await task
    async with aiohttp.ClientSession() as session:
        seen = await stats(session, url)
    assert seen["unique"] == n, seen
    await hub.close()
    return n / (t_submit + t_deliver), n / t_deliver, n / t_submit


async def serve(hub: Hub, workers: bool) -> tuple[object, asyncio.Task[None], str]:
    import socket

    import uvicorn

    from interlink.web.api import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(hub, workers=workers), log_level="error", lifespan="on")
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    return server, task, f"http://127.0.0.1:{port}"


async def intake_api(directory: Path, url: str, n: int) -> float:
    """Intake alone through the HTTP API, batches of 500, 4 clients at once."""
    (directory / "bench.db").unlink(missing_ok=True)
    hub = Hub(load(topology(directory, url)), features=FEATURES)
    server, task, api = await serve(hub, workers=False)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    batches = [
        orjson.dumps([{"type": "payment_order", "payload": payload(i)} for i in range(s, s + 500)])
        for s in range(0, n, 500)
    ]
    async with aiohttp.ClientSession() as session:
        queue = iter(batches)

        async def client() -> None:
            for body in queue:
                async with session.post(api + "/api/v1/documents", data=body, headers=headers) as r:
                    assert r.status == 202, await r.text()
                    await r.read()

        t0 = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(4)))
        elapsed = time.perf_counter() - t0
    server.should_exit = True  # type: ignore[attr-defined]
    await task
    await hub.close()
    return n / elapsed


async def latency(directory: Path, url: str, rate: int, seconds: float) -> dict[str, float]:
    """Single-document submits at a steady rate to `interlink serve` (API and workers in one
    process of their own), timed from before the submit to the receiver's arrival."""
    (directory / "bench.db").unlink(missing_ok=True)
    topology(directory, url)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = subprocess.Popen(
        [sys.executable, "-m", "interlink.cli", "serve", "--port", str(port)],
        cwd=directory,
        env={**os.environ, **SERVE_ENV},
        stdin=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    api = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    n = int(rate * seconds)
    try:
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    async with session.get(api + "/healthz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            await reset(session, url)
            start = time.monotonic()
            pending = set()

            async def submit(i: int) -> None:
                body = payload(i)
                body["t0"] = time.monotonic()
                doc = orjson.dumps({"type": "payment_order", "payload": body})
                async with session.post(api + "/api/v1/documents", data=doc, headers=headers) as r:
                    assert r.status == 202, await r.text()
                    await r.read()

            for i in range(n):
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)  # pacing the load, not waiting for a retry
                t = asyncio.create_task(submit(i))
                pending.add(t)
                t.add_done_callback(pending.discard)
            await asyncio.gather(*pending)
            achieved = n / (time.monotonic() - start)
            while True:
                seen = await stats(session, url)
                if int(seen["unique"]) >= n:  # type: ignore[call-overload]
                    break
                await asyncio.sleep(0.05)
    finally:
        server.terminate()
        server.wait(20)
    lat = sorted(float(x) * 1000 for x in seen["latencies"])  # type: ignore[attr-defined]
    return {
        "rate": achieved,
        "p50": statistics.median(lat),
        "p99": lat[int(len(lat) * 0.99) - 1],
        "max": lat[-1],
    }


async def load_backlog(hub: Hub, n: int) -> float:
    """Submit ``n`` documents through intake with the flow paused, so that they stay held;
    returns the seconds it took. bench/metrics_cost.py loads its backlog with this too."""
    hub.pause("trading-treasury", actor="bench")
    source = hub.topology.systems["trading"]
    t0 = time.perf_counter()
    for start in range(0, n, 1000):
        items = [Item("payment_order", payload(i)) for i in range(start, min(n, start + 1000))]
        await hub.intake.submit(source, items)
    return time.perf_counter() - t0


async def rss_pending(directory: Path, url: str, n: int) -> dict[str, float]:
    """Peak RSS of `interlink serve` (API and workers) running over ``n`` pending deliveries.

    The backlog is loaded by this process with the flow paused; then serve starts, the flow is
    resumed, and serve's peak resident memory (VmHWM) is read after it has worked for 8 s.
    """
    (directory / "bench.db").unlink(missing_ok=True)
    hub = Hub(load(topology(directory, url)), features=FEATURES)
    loaded = await load_backlog(hub, n)
    hub.resume("trading-treasury", actor="bench")
    await hub.close()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = subprocess.Popen(
        [sys.executable, "-m", "interlink.cli", "serve", "--port", str(port)],
        cwd=directory,
        env={**os.environ, **SERVE_ENV},
        stdin=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await asyncio.sleep(8)  # let it work on the backlog
        status_text = Path(f"/proc/{server.pid}/status").read_text()
        peak_kib = next(
            int(line.split()[1]) for line in status_text.splitlines() if line.startswith("VmHWM")
        )
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"http://127.0.0.1:{port}/api/v1/status",
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            ) as r,
        ):
            status = await r.json()
    finally:
        server.terminate()
        server.wait(20)
    pending = status["flows"]["trading-treasury"]["pending"]
    return {"pending": pending, "peak_rss_mb": peak_kib / 1024, "load_rate": n / loaded}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--rss", type=int, default=0, help="pending deliveries for the RSS run")
    args = parser.parse_args()
    os.environ["BENCH_TOKEN"] = TOKEN
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    with ReceiverProcess() as receiver, tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        ceil = await ceiling(receiver.url, args.docs)
        print(f"bare aiohttp ceiling        {ceil:10,.0f} POST/s   ({args.docs:,} documents)")
        total, deliver, submit = await end_to_end(directory, receiver.url, args.docs)
        print(
            f"interlink end to end        {total:10,.0f} docs/s   (submit {submit:,.0f}/s, "
            f"deliver {deliver:,.0f}/s)"
        )
        print(f"  ratio to ceiling          {deliver / ceil:10.2f}x   (delivery phase; target 0.5)")
        print(f"  ratio incl. intake        {total / ceil:10.2f}x")
        rate = await intake_api(directory, receiver.url, args.docs)
        print(f"intake over HTTP, batch 500 {rate:10,.0f} docs/s   (target 10,000)")
        lat = await latency(directory, receiver.url, 500, args.latency_seconds)
        print(
            f"latency at {lat['rate']:.0f} docs/s       p50 {lat['p50']:.1f} ms, "
            f"p99 {lat['p99']:.1f} ms, max {lat['max']:.1f} ms   (target p99 50 ms)"
        )
        if args.rss:
            r = await rss_pending(directory, receiver.url, args.rss)
            print(
                f"serve peak RSS, {r['pending']:,.0f} still pending after 8 s: "
                f"{r['peak_rss_mb']:.0f} MB (loaded at {r['load_rate']:,.0f} docs/s; "
                "target 250 MB)"
            )


if __name__ == "__main__":
    from interlink import runner

    runner.run(main())
