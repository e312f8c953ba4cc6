"""How fast a maintenance window's backlog drains once the window ends, against the flow's
configured rate (target: at least 90% of it).

    python bench/drain.py [--docs 100000] [--rate 2000]

A window is opened on the downstream; the documents are submitted through in-process intake
in batches of 500 while it is open (they arrive ``held: maintenance``) with the engine
running (it sends nothing to the system in the window). Then the window is made to end now
and the clock (the system clock) runs until every delivery is delivered to a receiver in its
own process. Prints the drain time, the achieved rate and its ratio to the configured rate,
and the window's drain report. Not a test: numbers go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import aiohttp
from sqlalchemy import update

sys.path.insert(0, str(Path(__file__).resolve().parent))
from receiver import ReceiverProcess

from interlink.features.maintenance.service import maintenance
from interlink.config import load
from interlink.intake import Item
from interlink.features.maintenance.tables import maintenance_windows
from interlink.service import Hub
from interlink.features.registry import FEATURES

FLOW = "trading-treasury"


def topology(directory: Path, url: str, rate: int) -> Path:
    path = directory / "interlink.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            timezone: UTC
            database: sqlite:///drain.db
            systems:
              trading: {{token_env: BENCH_TOKEN}}
              treasury:
                url: {url}
                concurrency: 64
            documents:
              payment_order: {{key: order_no}}
            flows:
              {FLOW}:
                from: trading
                to: treasury
                document: payment_order
                path: /payments
                rate: {rate}/s
            engine:
              batch: 1000
              concurrency: 64
            """
        )
    )
    return path


def payload(i: int) -> dict[str, object]:
    return {"order_no": f"PO-{i:08d}", "amount": "100.00", "currency": "CNY", "kind": "pay"}


async def count(hub: Hub) -> dict[str, object]:
    status = await asyncio.to_thread(hub.status)
    flow: dict[str, object] = status["flows"][FLOW]
    return flow


async def run(n: int, rate: int, window_on: bool = True) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp, ReceiverProcess() as receiver:
        directory = Path(tmp)
        hub = Hub(load(topology(directory, receiver.url, rate)), features=FEATURES)
        service = maintenance(hub)
        now = hub.clock.now()
        # Without the window (--baseline) the engine is started after the submissions: the
        # same backlog, drained by the engine alone, for comparison on the same machine.
        window = (
            service.add(
                "treasury", now + timedelta(seconds=1), now + timedelta(days=1), "bench", "bench"
            )
            if window_on
            else None
        )
        stop = asyncio.Event()
        engine = asyncio.create_task(hub.engine.run(stop)) if window_on else None
        await asyncio.sleep(1.2)  # until the window is open
        source = hub.topology.systems["trading"]
        t0 = time.perf_counter()
        for start in range(0, n, 500):
            items = [Item("payment_order", payload(i)) for i in range(start, min(n, start + 500))]
            await hub.intake.submit(source, items)
        t_submit = time.perf_counter() - t0
        held = await count(hub)

        def end_now(conn: object) -> None:
            assert window is not None
            conn.execute(  # type: ignore[attr-defined]
                update(maintenance_windows)
                .where(maintenance_windows.c.id == window["id"])
                .values(end_at=hub.clock.now())
            )

        if window is not None:
            assert held["held"] == {"maintenance": n}, held
            hub.store.write_sync(end_now)
            service.refresh()
        else:
            engine = asyncio.create_task(hub.engine.run(stop))
        t1 = time.perf_counter()
        while True:
            await asyncio.sleep(0.25)  # a benchmark polling for completion, not a test
            delivered = (await count(hub))["delivered"]
            if isinstance(delivered, int) and delivered >= n:
                break
        drain = time.perf_counter() - t1
        report = None
        for _ in range(100 if window_on else 0):
            drained = [e for e in hub.events(20) if e["kind"] == "maintenance_drained"]
            if drained:
                report = drained[0]["detail"]
                break
            await asyncio.sleep(0.1)
        stop.set()
        assert engine is not None
        await engine
        async with aiohttp.ClientSession() as session, session.get(receiver.url + "/_stats") as r:
            seen = await r.json()
        await hub.close()
        assert seen["unique"] == n, seen
        achieved = n / drain
        return {
            "documents": n,
            "configured_rate": rate,
            "submit_seconds": round(t_submit, 2),
            "submit_rate": round(n / t_submit),
            "drain_seconds": round(drain, 2),
            "achieved_rate": round(achieved),
            "ratio": round(achieved / rate, 3),
            "window": window_on,
            "report": report and report["summary"],
            "report_drain_seconds": report and report["drain_seconds"],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument(
        "--baseline", action="store_true", help="The same backlog without a window."
    )
    args = parser.parse_args()
    os.environ.setdefault("BENCH_TOKEN", "bench-token")
    result = asyncio.run(run(args.docs, args.rate, window_on=not args.baseline))
    print(json.dumps(result, indent=2))
    print(
        f"drained {result['documents']} held deliveries in {result['drain_seconds']} s: "
        f"{result['achieved_rate']}/s against {result['configured_rate']}/s configured "
        f"(ratio {result['ratio']}; target >= 0.9)"
    )


if __name__ == "__main__":
    main()
