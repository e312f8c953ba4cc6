"""HTTP intake under load: single-document and batch requests, p50 and p99.

    python bench/api_load.py [--seconds 8] [--stores sqlite,postgresql] [--client wrk|aiohttp]

SQLite: one `interlink serve --no-workers` process. PostgreSQL: two of them on two ports,
the load split between them. The load comes from wrk (Debian's `wrk` package; one wrk
process per API, 16 connections each, every request a new document) when it is installed,
else from this process (aiohttp, 32 connections), which takes most of a core itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import PG_DEFAULT, drop_pg, pg_database
from throughput import SERVE_ENV, TOKEN, payload, topology

CONNECTIONS = 32

# wrk's script (one thread per wrk process): every request new documents, keyed by the
# process's PREFIX and a counter; at the end one JSON line with what wrk measured.
WRK_SCRIPT = """
local counter = 0
local function doc(i)
  return string.format('{"type":"payment_order","payload":{"order_no":"PO-%s-%d",'
    .. '"amount":"100.00","currency":"CNY","kind":"pay"}}', PREFIX, i)
end
function request()
  local parts = {}
  for i = 1, BATCH do counter = counter + 1; parts[i] = doc(counter) end
  local body = BATCH == 1 and parts[1] or "[" .. table.concat(parts, ",") .. "]"
  return wrk.format("POST", "/api/v1/documents", HEADERS, body)
end
function done(summary, latency, requests)
  io.write(string.format('{"requests":%d,"seconds":%f,"p50":%f,"p99":%f,"errors":%d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3,
    latency:percentile(99) / 1e3, summary.errors.status + summary.errors.connect
    + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def load(apis: list[str], batch: int, seconds: float) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    latencies: list[float] = []
    counter = iter(range(10**9))
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client(n: int) -> None:
            api = apis[n % len(apis)]
            while time.monotonic() < deadline:
                first = next(counter) * batch
                if batch == 1:
                    body = orjson.dumps({"type": "payment_order", "payload": payload(first)})
                else:
                    body = orjson.dumps(
                        [
                            {"type": "payment_order", "payload": payload(i)}
                            for i in range(first, first + batch)
                        ]
                    )
                t0 = time.perf_counter()
                async with session.post(api + "/api/v1/documents", data=body, headers=headers) as r:
                    await r.read()
                    assert r.status == 202, r.status
                latencies.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        await asyncio.gather(*(client(n) for n in range(CONNECTIONS)))
        elapsed = time.perf_counter() - t0
    lat = sorted(x * 1000 for x in latencies)
    return {
        "requests": len(lat) / elapsed,
        "docs": len(lat) * batch / elapsed,
        "p50": statistics.median(lat),
        "p99": lat[int(len(lat) * 0.99) - 1],
    }


async def load_wrk(apis: list[str], batch: int, seconds: float) -> dict[str, float]:
    """One wrk process per API, all at once; their figures summed (p50, p99: the worst)."""
    with tempfile.TemporaryDirectory() as tmp:
        procs = []
        for n, api in enumerate(apis):
            headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
            script = Path(tmp) / f"load{n}.lua"
            script.write_text(
                f"PREFIX, BATCH = '{n}-{time.time_ns()}', {batch}\n"
                "HEADERS = {"
                + ", ".join(f'["{k}"] = "{v}"' for k, v in headers.items())
                + "}\n"
                + WRK_SCRIPT
            )
            command = ["wrk", "-t1", f"-c{CONNECTIONS // len(apis)}", f"-d{seconds:g}s"]
            command += ["--timeout", "30s", "-s", str(script), api]
            procs.append(subprocess.Popen(command, stdout=subprocess.PIPE, text=True))
        results = []
        for proc in procs:
            out, _ = proc.communicate()
            results.append(json.loads(out.strip().splitlines()[-1]))
    if any(r["errors"] for r in results):
        raise SystemExit(f"wrk saw errors (non-2xx or socket): {results}")
    rate = sum(r["requests"] / r["seconds"] for r in results)
    return {
        "requests": rate,
        "docs": rate * batch,
        "p50": max(r["p50"] for r in results),
        "p99": max(r["p99"] for r in results),
    }


async def run(store: str, processes: int, seconds: float, pg: str, client: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        topology(directory, "http://127.0.0.1:9")
        env = {**os.environ, **SERVE_ENV}
        name = None
        if store == "postgresql":
            name, env["INTERLINK_DATABASE_URL"] = pg_database(pg)
        ports = [free_port() for _ in range(processes)]
        servers = [
            subprocess.Popen(
                [sys.executable, "-m", "interlink.cli", "serve", "--no-workers", "--port", str(p)],
                cwd=directory,
                env=env,
                stdin=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for p in ports
        ]
        apis = [f"http://127.0.0.1:{p}" for p in ports]
        try:
            async with aiohttp.ClientSession() as session:
                for api in apis:
                    while True:
                        try:
                            async with session.get(api + "/healthz") as r:
                                if r.status == 200:
                                    break
                        except aiohttp.ClientError:
                            pass
                        await asyncio.sleep(0.1)
            for batch in (1, 500):
                loader = load_wrk if client == "wrk" else load
                figures = await loader(apis, batch, seconds)
                label = "single" if batch == 1 else "batch 500"
                print(
                    f"{store:10s} {processes} API  {label:10s} {figures['requests']:8,.0f} req/s "
                    f"{figures['docs']:9,.0f} docs/s   p50 {figures['p50']:6.1f} ms  "
                    f"p99 {figures['p99']:6.1f} ms"
                )
        finally:
            for s in servers:
                s.terminate()
            for s in servers:
                s.wait(20)
            if name:
                drop_pg(pg, name)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--pg", default=PG_DEFAULT)
    parser.add_argument(
        "--client", choices=("wrk", "aiohttp"), default="wrk" if shutil.which("wrk") else "aiohttp"
    )
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores; {CONNECTIONS} connections from {args.client}")
    for store in args.stores.split(","):
        await run(store, 1 if store == "sqlite" else 2, args.seconds, args.pg, args.client)


if __name__ == "__main__":
    from interlink import runner

    runner.run(main())
