"""Scale-out on PostgreSQL: 3 worker processes and 2 API processes, 50,000 documents.

Each delivery is made exactly once by key, order is kept per key on the ordered flow, and no
flow's rate limit is exceeded in any second (the receiver counts requests per second).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select

from interlink.store.db import open_store
from interlink.store.schema import workers
from tests.acceptance.test_serve import free_port
from tests.receiver import Receiver

COMMAND = [sys.executable, "-m", "interlink.cli"]
TOKEN = "scale-token"
ORDERS = 30_000  # payment orders: 25,000 keys, 5,000 of them with a second revision
CUSTOMERS = 20_000
RATES = {"trading-treasury": 1500, "trading-finance": 2500, "trading-member": 2500}

TOPOLOGY = """\
database: sqlite:///unused.db
systems:
  trading: {{token_env: SCALE_TOKEN}}
  treasury: {{url: "{url}/treasury", concurrency: 48}}
  finance: {{url: "{url}/finance", concurrency: 48}}
  member: {{url: "{url}/member", concurrency: 48}}
documents:
  payment_order: {{key: order_no}}
  customer: {{key: customer_id}}
flows:
  trading-treasury: {{from: trading, to: treasury, document: payment_order, ordered: true,
                      rate: {treasury}/s, retry: [1s]}}
  trading-finance: {{from: trading, to: finance, document: payment_order, rate: {finance}/s,
                     retry: [1s]}}
  trading-member: {{from: trading, to: member, document: customer, rate: {member}/s,
                    retry: [1s]}}
engine:
  batch: 1000
"""


def _documents() -> list[dict]:
    docs: list[dict] = []
    for i in range(25_000):
        docs.append(
            {"type": "payment_order", "payload": {"order_no": f"PO-{i}", "kind": "pay", "n": 1}}
        )
    for i in range(5_000):
        docs.append(
            {"type": "payment_order", "payload": {"order_no": f"PO-{i}", "kind": "refund", "n": 2}}
        )
    for i in range(CUSTOMERS):
        docs.append({"type": "customer", "payload": {"customer_id": f"C-{i}", "name": "x"}})
    return docs


@pytest.mark.slow
@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
async def test_three_workers_two_apis_fifty_thousand_documents(
    tmp_path: Path, database: str
) -> None:
    url = os.environ["INTERLINK_DATABASE_URL"]
    receiver = await Receiver().start()
    (tmp_path / "interlink.yaml").write_text(
        TOPOLOGY.format(
            url=receiver.url,
            treasury=RATES["trading-treasury"],
            finance=RATES["trading-finance"],
            member=RATES["trading-member"],
        )
    )
    env = {**os.environ, "SCALE_TOKEN": TOKEN, "INTERLINK_DATABASE_URL": url}
    procs: list[subprocess.Popen[bytes]] = []
    ports = [free_port(), free_port()]
    try:
        for _ in range(3):
            procs.append(
                subprocess.Popen(
                    [*COMMAND, "worker"],
                    cwd=tmp_path,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for port in ports:
            procs.append(
                subprocess.Popen(
                    [*COMMAND, "serve", "--no-workers", "--port", str(port)],
                    cwd=tmp_path,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        # All three workers registered, and each has counted the others (one heartbeat), so
        # every one of them takes a third of each limit before any document arrives.
        store = open_store(url, migrate=False)
        deadline = time.monotonic() + 30
        while (
            store.read_sync(lambda c: c.execute(select(func.count()).select_from(workers)).scalar())
            < 3
        ):
            assert time.monotonic() < deadline, "workers did not start"
            await asyncio.sleep(0.1)
        await asyncio.sleep(2.5)  # one heartbeat interval: the workers' shares settle
        store.close()

        docs = _documents()
        async with aiohttp.ClientSession() as session:
            for port in ports:
                deadline = time.monotonic() + 30
                while True:
                    try:
                        async with session.get(f"http://127.0.0.1:{port}/healthz") as r:
                            if r.status == 200:
                                break
                    except aiohttp.ClientConnectionError:
                        pass
                    assert time.monotonic() < deadline, "API did not start"
                    await asyncio.sleep(0.1)

            async def submit(start: int) -> None:
                port = ports[(start // 1000) % 2]
                async with session.post(
                    f"http://127.0.0.1:{port}/api/v1/documents",
                    json=docs[start : start + 1000],
                    headers={"Authorization": f"Bearer {TOKEN}"},
                ) as r:
                    assert r.status == 202, await r.text()
                    body = await r.json()
                    assert all(item["status"] == 202 for item in body)

            # Revisions of one key must be submitted in order: first revisions, then seconds.
            await asyncio.gather(*(submit(s) for s in range(0, 25_000, 1000)))
            await asyncio.gather(*(submit(s) for s in range(25_000, len(docs), 1000)))

        expected = 2 * ORDERS + CUSTOMERS
        deadline = time.monotonic() + 240
        while len(receiver.requests) < expected:
            assert time.monotonic() < deadline, f"{len(receiver.requests)} of {expected}"
            await asyncio.sleep(0.5)
        await asyncio.sleep(1.0)  # anything beyond the expected count would be a duplicate
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        await receiver.stop()

    flows = {
        "/treasury/": "trading-treasury",
        "/finance/": "trading-finance",
        "/member/": "trading-member",
    }
    seen: Counter[tuple[str, str]] = Counter()
    per_second: dict[str, Counter[int]] = defaultdict(Counter)
    order: dict[str, list[int]] = defaultdict(list)
    for request in receiver.requests:
        flow = flows[request.path]
        seen[(flow, request.headers["Idempotency-Key"])] += 1
        per_second[flow][int(request.at)] += 1
        if flow == "trading-treasury":
            order[request.headers["Interlink-Key"]].append(
                int(request.headers["Interlink-Revision"])
            )
    assert len(receiver.requests) == 2 * ORDERS + CUSTOMERS
    assert max(seen.values()) == 1, "a delivery was made twice"
    assert all(revisions == sorted(revisions) for revisions in order.values())
    assert sum(1 for r in order.values() if len(r) == 2) == 5_000
    for flow, rate in RATES.items():
        busiest = max(per_second[flow].values())
        assert busiest <= rate, f"{flow}: {busiest} requests in one second, limit {rate}/s"
