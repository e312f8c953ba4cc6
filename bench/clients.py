"""HTTP clients for delivery (issue 13): aiohttp, pyreqwest and rnet, measured side by side.

    python bench/clients.py [--docs 20000] [--rounds 3] [--concurrency 64]

Each client POSTs ``--docs`` small JSON documents (about 100 bytes, with the headers a delivery
carries) at ``--concurrency`` to the receiver of bench/receiver.py, which runs in its own
process. Clients take turns within each round, so a slow moment on the shared machine touches
all of them. Printed per client and round: requests/s, and this process's CPU time per request
(``time.process_time``, all threads: pyreqwest and rnet do their I/O on Rust threads).

Three passes: the bare clients (as their documentation uses them); Interlink's two transports
(``HttpTransport`` on aiohttp, ``ReqwestTransport`` on pyreqwest), which add the header checks,
the 4 KB streamed read and the error mapping; and the engine delivering ``--docs`` documents
on embedded SQLite with each transport injected (the delivery phase of bench/throughput.py;
CPU then includes the store's writer thread). Not a test: numbers go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
from receiver import ReceiverProcess
from throughput import payload, topology

from interlink.config import load
from interlink.features.registry import FEATURES
from interlink.intake import Item
from interlink.service import Hub
from interlink.transports.base import Request, Transport
from interlink.transports.http import HttpTransport
from interlink.transports.reqwest import ReqwestTransport

TIMEOUT = 10.0
WARMUP = 500

# One POST, given the document's index; a client is a factory of that plus its close().
Post = Callable[[int], Awaitable[None]]
Client = Callable[[str], Awaitable[tuple[Post, Callable[[], Awaitable[None]]]]]


def body(i: int) -> bytes:
    return orjson.dumps(
        {"order_no": f"PO-{i:08d}", "amount": "100.00", "currency": "CNY", "kind": "pay", "i": i}
    )


def headers(i: int) -> dict[str, str]:
    key = f"01JD{i:022d}"
    return {
        "Idempotency-Key": key,
        "webhook-id": key,
        "webhook-timestamp": "1764489600",
        "webhook-signature": "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
        "Interlink-Document-Type": "payment_order",
        "Interlink-Key": f"PO-{i:08d}",
        "Interlink-Revision": "1",
        "Content-Type": "application/json",
    }


async def aiohttp_client(url: str) -> tuple[Post, Callable[[], Awaitable[None]]]:
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=256, limit_per_host=0),
        cookie_jar=aiohttp.DummyCookieJar(),
    )
    timeout = aiohttp.ClientTimeout(total=TIMEOUT)

    async def post(i: int) -> None:
        async with session.post(
            url, data=body(i), headers=headers(i), timeout=timeout, allow_redirects=False
        ) as response:
            await response.read()
            assert response.status == 200

    return post, session.close


async def pyreqwest_client(url: str) -> tuple[Post, Callable[[], Awaitable[None]]]:
    from pyreqwest.client import ClientBuilder

    client = ClientBuilder().follow_redirects(False).max_connections(256).build()
    timeout = timedelta(seconds=TIMEOUT)

    async def post(i: int) -> None:
        request = client.post(url).headers(headers(i)).body_bytes(body(i)).timeout(timeout)
        response = await request.build().send()
        await response.bytes()
        assert response.status == 200

    return post, client.close


async def rnet_client(url: str) -> tuple[Post, Callable[[], Awaitable[None]]]:
    import rnet

    client = rnet.Client(allow_redirects=False, pool_max_size=256)

    async def post(i: int) -> None:
        # rnet's timeouts are whole seconds.
        response = await client.post(url, headers=headers(i), body=body(i), timeout=int(TIMEOUT))
        await response.bytes()
        assert response.status_code.as_int() == 200

    async def close() -> None:
        return None

    return post, close


def transport_client(make: Callable[[], Transport]) -> Client:
    async def client(url: str) -> tuple[Post, Callable[[], Awaitable[None]]]:
        transport = make()

        async def post(i: int) -> None:
            response = await transport.send(
                Request(url=url, body=body(i), headers=headers(i), timeout=TIMEOUT)
            )
            assert response.status == 200

        return post, transport.close

    return client


def engine_client(make: Callable[[], Transport]) -> Engine:
    async def deliver(base: str, n: int) -> tuple[float, float]:
        with tempfile.TemporaryDirectory() as directory:
            hub = Hub(load(topology(Path(directory), base)), transport=make(), features=FEATURES)
            source = hub.topology.systems["trading"]
            for start in range(0, n, 500):
                batch = range(start, min(n, start + 500))
                await hub.intake.submit(source, [Item("payment_order", payload(i)) for i in batch])
            stop = asyncio.Event()
            cpu, wall = time.process_time(), time.perf_counter()
            task = asyncio.create_task(hub.engine.run(stop))
            while (await asyncio.to_thread(hub.status))["flows"]["trading-treasury"][
                "delivered"
            ] < n:
                await asyncio.sleep(0.05)  # a benchmark polling for completion, not a test
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            stop.set()
            await task
            await hub.close()
        return n / wall, cpu / n * 1e6

    return deliver


# The engine pass: (receiver base URL, documents) -> (deliveries/s, CPU µs per delivery).
Engine = Callable[[str, int], Awaitable[tuple[float, float]]]

BARE: dict[str, Client] = {
    "aiohttp": aiohttp_client,
    "pyreqwest": pyreqwest_client,
    "rnet": rnet_client,
}
TRANSPORTS: dict[str, Client] = {
    "HttpTransport (aiohttp)": transport_client(HttpTransport),
    "ReqwestTransport (pyreqwest)": transport_client(ReqwestTransport),
}
ENGINE: dict[str, Engine] = {
    "engine on aiohttp": engine_client(HttpTransport),
    "engine on pyreqwest": engine_client(ReqwestTransport),
}


async def run(client: Client, url: str, n: int, concurrency: int) -> tuple[float, float]:
    """(requests/s, client CPU µs per request) for ``n`` POSTs after a warm-up."""
    post, close = await client(url)
    try:
        await _drive(post, WARMUP, concurrency)
        cpu, wall = time.process_time(), time.perf_counter()
        await _drive(post, n, concurrency)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        await close()
    return n / wall, cpu / n * 1e6


async def _drive(post: Post, n: int, concurrency: int) -> None:
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            await post(i)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def measure(
    clients: dict[str, Any], url: str, args: argparse.Namespace, engine: bool = False
) -> dict[str, list[tuple[float, float]]]:
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in clients}
    for round_no in range(1, args.rounds + 1):
        for name, client in clients.items():
            # A fresh uvloop loop per run, as `interlink serve` and `worker` run (runner.py).
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                if engine:
                    rate, cpu = runner.run(client(url, args.docs))
                else:
                    rate, cpu = runner.run(run(client, url, args.docs, args.concurrency))
            results[name].append((rate, cpu))
            print(f"  round {round_no}  {name:30} {rate:8,.0f} req/s  {cpu:6.1f} µs CPU/req")
    return results


def summary(results: dict[str, list[tuple[float, float]]]) -> None:
    print(f"  {'client':30} {'req/s (median, min-max)':>28} {'µs CPU/req (median, min-max)':>30}")
    for name, runs in results.items():
        rates = [r for r, _ in runs]
        cpus = [c for _, c in runs]
        print(
            f"  {name:30} {statistics.median(rates):10,.0f} ({min(rates):,.0f}-{max(rates):,.0f})"
            f" {statistics.median(cpus):14.1f} ({min(cpus):.1f}-{max(cpus):.1f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--only", choices=["bare", "transports", "engine"], default=None)
    args = parser.parse_args()
    passes: dict[str, dict[str, Any]] = {"bare": BARE, "transports": TRANSPORTS, "engine": ENGINE}
    with ReceiverProcess() as receiver:
        time.sleep(0.5)  # let the receiver process start listening
        url = f"{receiver.url}/payments"
        print(f"{args.docs:,} POSTs per run, concurrency {args.concurrency}, {args.rounds} rounds")
        for name, clients in passes.items():
            if args.only not in (None, name):
                continue
            print(f"\n{name}:")
            target = receiver.url if name == "engine" else url
            summary(measure(clients, target, args, engine=name == "engine"))


if __name__ == "__main__":
    main()
