"""What alerting costs delivery throughput while 10% of deliveries are rejected.

    python bench/alerting.py [--docs 60000] [--seconds 8] [--rounds 5] [--reject 0.1]

Each run starts from a fresh SQLite store holding ``--docs`` pending deliveries (submitted
before the clock starts). The engine then delivers for ``--seconds`` against a receiver in
its own process that answers 422 to every tenth order (by order number, so every run sees
the same rejections). Runs alternate between the alerter off and the alerter on; only the
alerter's loop is started, not the other capabilities' background loops. With the alerter
on, its loop runs beside the engine with a 2 s aggregation interval, so it folds and sends
summaries all through the run; its mail goes to a real aiosmtpd server on loopback.

Prints deliveries finished (delivered or dead) per second for both modes (the median of the
rounds, after a warm-up run), and the cost. Not a test: the figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import socket
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from interlink.features.alerts.service import alerts
from interlink.config import load
from interlink.intake import Item
from interlink.service import Hub
from interlink.features.registry import FEATURES

FLOW = "trading-treasury"


def _receiver(sock: socket.socket, reject_every: int) -> None:
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        body = await request.json()
        if int(body["order_no"].split("-")[1]) % reject_every == 0:
            return web.json_response({"error": "payee_account is not valid"}, status=422)
        return web.json_response({"ok": True})

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/payments", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        await asyncio.Event().wait()

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())


class Sink:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        return "250 OK"


def topology(directory: Path, url: str, smtp_port: int) -> Path:
    path = directory / "interlink.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            timezone: UTC
            database: sqlite:///bench.db
            systems:
              trading:
                contacts:
                  - {{role: product, email: pm@example.test}}
                  - {{role: dev, email: dev@example.test}}
              treasury:
                url: {url}
                concurrency: 64
                contacts:
                  - {{role: ops, email: ops@example.test}}
            documents:
              payment_order: {{key: order_no}}
            flows:
              {FLOW}: {{from: trading, to: treasury, document: payment_order, path: /payments}}
            alerts:
              smtp: {{host: 127.0.0.1, port: {smtp_port}, from: interlink@example.test}}
              aggregate: 2s
            engine:
              batch: 1000
              concurrency: 64
            """
        )
    )
    return path


async def run(directory: Path, url: str, smtp_port: int, docs: int, seconds: float,
              alerting: bool) -> dict[str, float]:  # fmt: skip
    for name in ("bench.db", "bench.db-wal", "bench.db-shm"):
        (directory / name).unlink(missing_ok=True)
    hub = Hub(load(topology(directory, url, smtp_port)), features=FEATURES)
    source = hub.topology.systems["trading"]
    for start in range(0, docs, 1000):
        items = [
            Item("payment_order", {"order_no": f"PO-{i:08d}", "amount": "1.00"})
            for i in range(start, min(docs, start + 1000))
        ]
        await hub.intake.submit(source, items)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(hub.engine.run(stop))]
    if alerting:  # the alerter's loop alone, not the other capabilities' background loops
        tasks.append(asyncio.create_task(alerts(hub).loop(stop)))
    t0 = time.perf_counter()
    await asyncio.sleep(seconds)  # a benchmark of fixed length, not a test waiting
    counts = (await asyncio.to_thread(hub.status))["flows"][FLOW]
    elapsed = time.perf_counter() - t0
    stop.set()
    await asyncio.gather(*tasks)
    finished = counts["delivered"] + counts["dead"]
    if alerting:
        alerts(hub).run_once()  # record what the loop had not yet taken, for the counts
    records = alerts(hub).history(limit=1000)
    await hub.close()
    if finished >= docs:
        print(f"  (all {docs} finished early: raise --docs for a fair figure)")
    return {
        "rate": finished / elapsed,
        "dead": counts["dead"],
        "finished": finished,
        "alerts": len(records),
        "events": sum(r["count"] for r in records),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=60_000)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reject", type=float, default=0.1, help="share rejected (1/N)")
    args = parser.parse_args()

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    reject_every = max(1, round(1 / args.reject))
    receiver = mp.get_context("fork").Process(
        target=_receiver, args=(sock, reject_every), daemon=True
    )
    receiver.start()
    sink = Sink()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        smtp_port = probe.getsockname()[1]
    smtp = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    results: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            # A warm-up run first: the first run in a process pays for imports and caches.
            await run(Path(tmp), url, smtp_port, min(args.docs, 5000), 2.0, False)
            for round_ in range(args.rounds):
                for alerting in (False, True):
                    r = await run(Path(tmp), url, smtp_port, args.docs, args.seconds, alerting)
                    results[alerting].append(r)
                    print(
                        f"round {round_ + 1} alerter {'on ' if alerting else 'off'}: "
                        f"{r['rate']:8.0f} deliveries/s ({r['finished']:.0f} finished, "
                        f"{r['dead']:.0f} rejected; {r['alerts']:.0f} alert messages "
                        f"for {r['events']:.0f} events)"
                    )
    finally:
        smtp.stop()
        receiver.terminate()
        receiver.join(5)
        sock.close()
    # The median of the rounds: this 2-core machine is shared, and one slow round is noise.
    off = statistics.median(r["rate"] for r in results[False])
    on = statistics.median(r["rate"] for r in results[True])
    print(f"\nreject share: 1 in {reject_every}; run length {args.seconds:.0f} s each")
    print(f"medians of {args.rounds} rounds")
    print(f"alerter off: {off:8.0f} deliveries/s")
    print(f"alerter on:  {on:8.0f} deliveries/s")
    print(f"cost:        {(off - on) / off * 100:7.1f} %   (target: under 10 %)")
    print(f"mails received by the SMTP sink: {sink.count}")


if __name__ == "__main__":
    asyncio.run(main())
