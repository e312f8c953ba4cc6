"""AMQP against HTTP in one run: deliveries/s and CPU per delivery, the same documents.

    python bench/amqp.py [--docs 10000] [--rounds 3] [--amqp-concurrency 64]
                         [--amqp amqp://guest:guest@127.0.0.1:5672/]

Each round delivers the same documents once over each transport, in turn: a fresh SQLite store
in a temporary folder, the documents submitted in process (not measured), then ``Engine.run``
(as ``serve`` runs it) until every delivery is delivered (measured: wall time, and this
process's CPU over all its threads, the store writer's included).

- HTTP: to the loopback receiver of bench/receiver.py in its own process, on the default client
  (pyreqwest);
- AMQP: published persistent and mandatory with publisher confirms, through a direct exchange
  to a durable queue made for the run on the RabbitMQ given, deleted afterwards.

A third run answers every delivery 200 in process, without a network (bench/cost.py's
``none``): the engine and the store alone, so that the differences are the transports'.

Both at concurrency 64 and claim batches of 1000, as bench/throughput.py; ``--amqp-concurrency``
sets the broker system's own (messages awaiting their confirm, not connections). The receiver's and
the broker's CPU are not counted: each is the downstream's. The broker's is shown beside, when it
runs on this machine (a RabbitMQ ``beam.smp`` process in /proc): on a machine of two cores it is
what the deliveries share. Prints each round and the medians. Not a test: numbers go to
docs/transports.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import aio_pika

sys.path.insert(0, str(Path(__file__).resolve().parent))
from receiver import ReceiverProcess
from cost import NullTransport
from throughput import TOKEN, payload

from interlink.config import load
from interlink.features.registry import FEATURES
from interlink.intake import Item
from interlink.service import Hub
from interlink.transports.base import Transport

CONCURRENCY = 64
AMQP_ENV = "BENCH_LEDGER_AMQP"


def topology(directory: Path, target: str, concurrency: int = CONCURRENCY) -> Path:
    path = directory / "interlink.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            timezone: UTC
            database: sqlite:///bench.db
            systems:
              trading: {{token_env: BENCH_TOKEN}}
              ledger:
                concurrency: {concurrency}
                {target}
            documents:
              payment_order: {{key: order_no}}
            flows:
              trading-ledger:
                from: trading
                to: ledger
                document: payment_order
                path: /payments
            engine:
              batch: 1000
              concurrency: {CONCURRENCY}
            """
        )
    )
    return path


async def deliver(path: Path, n: int, transport: Transport | None = None) -> tuple[float, float]:
    """Submit ``n`` documents, then run the engine until all are delivered: (seconds, CPU s)."""
    hub = Hub(load(path), transport=transport, features=FEATURES)
    source = hub.topology.systems["trading"]
    for start in range(0, n, 500):
        items = [Item("payment_order", payload(i)) for i in range(start, min(n, start + 500))]
        await hub.intake.submit(source, items)
    stop = asyncio.Event()
    cpu0, t0 = time.process_time(), time.perf_counter()
    task = asyncio.create_task(hub.engine.run(stop))
    try:
        while True:
            await asyncio.sleep(0.05)  # a benchmark polling for completion, not a test
            flow = (await asyncio.to_thread(hub.status))["flows"]["trading-ledger"]
            if flow["delivered"] >= n:
                break
            if task.done():
                raise RuntimeError(f"the engine stopped: {flow}")
    finally:
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        stop.set()
        await task
        await hub.close()
    return elapsed, cpu


async def http_round(receiver: str, n: int, transport: Transport | None) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        return await deliver(topology(Path(tmp), f"url: {receiver}"), n, transport)


def broker_cpu() -> float | None:
    """The CPU seconds of this machine's RabbitMQ (its Erlang VM, beam.smp) so far, if any."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            name, _, rest = stat.read_text().partition(") ")
            if name.endswith("(beam.smp"):
                fields = rest.split()  # utime and stime are the 14th and 15th of the line
                return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return None


async def amqp_round(url: str, n: int, concurrency: int) -> tuple[float, float, float | None]:
    """As the other rounds, and the broker's CPU over the run (None: not on this machine)."""
    name = f"bench-{uuid.uuid4().hex[:10]}"
    connection = await aio_pika.connect(url)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(name, aio_pika.ExchangeType.DIRECT)
    queue = await channel.declare_queue(name, durable=True)
    await queue.bind(exchange, "trading-ledger")
    os.environ[AMQP_ENV] = url
    try:
        with tempfile.TemporaryDirectory() as tmp:
            block = (
                f"transport: amqp\n                amqp: {{url_env: {AMQP_ENV}, exchange: {name}}}"
            )
            before = broker_cpu()
            elapsed, cpu = await deliver(topology(Path(tmp), block, concurrency), n)
            after = broker_cpu()
        declared = await channel.declare_queue(name, durable=True, passive=True)
        queued = declared.declaration_result.message_count
        if queued != n:
            raise RuntimeError(f"{queued} messages in the queue, {n} expected")
        broker = None if before is None or after is None else after - before
        return elapsed, cpu, broker
    finally:
        await queue.delete(if_unused=False, if_empty=False)
        await exchange.delete()
        await connection.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--amqp-concurrency", type=int, default=CONCURRENCY)
    args = parser.parse_args()
    os.environ["BENCH_TOKEN"] = TOKEN
    n = args.docs
    load_avg = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} cores, load {load_avg[0]:.1f}; {n:,} documents a round; "
        f"concurrency HTTP {CONCURRENCY}, AMQP {args.amqp_concurrency}"
    )
    kinds = ("none", "http", "amqp")
    results: dict[str, list[tuple[float, float]]] = {kind: [] for kind in kinds}
    brokers: list[float] = []
    with ReceiverProcess() as receiver:
        for i in range(args.rounds):
            for kind in kinds:
                if kind == "none":
                    elapsed, cpu = await http_round(receiver.url, n, NullTransport())
                elif kind == "http":
                    elapsed, cpu = await http_round(receiver.url, n, None)
                else:
                    elapsed, cpu, broker = await amqp_round(args.amqp, n, args.amqp_concurrency)
                results[kind].append((elapsed, cpu))
                beside = ""
                if kind == "amqp" and broker is not None:
                    brokers.append(broker / n * 1e6)
                    beside = (
                        f"; broker {broker / n * 1e6:,.0f} µs, {broker / elapsed:.0%} of a core"
                    )
                print(
                    f"round {i + 1} {kind:5s} {n / elapsed:8,.0f} deliveries/s"
                    f"  {cpu / n * 1e6:6,.0f} µs CPU per delivery{beside}"
                )
    print(f"load at the end {os.getloadavg()[0]:.1f}")
    rate = {k: statistics.median(n / e for e, _ in v) for k, v in results.items()}
    cpu = {k: statistics.median(c / n * 1e6 for _, c in v) for k, v in results.items()}
    for kind in kinds:
        print(f"median {kind:5s} {rate[kind]:8,.0f} deliveries/s  {cpu[kind]:6,.0f} µs CPU")
    if brokers:
        print(f"median broker {statistics.median(brokers):6,.0f} µs CPU per AMQP delivery")
    print(
        f"AMQP / HTTP: {rate['amqp'] / rate['http']:.2f}x the rate, "
        f"{cpu['amqp'] / cpu['http']:.2f}x the CPU per delivery"
    )


if __name__ == "__main__":
    from interlink import runner

    runner.run(main())
