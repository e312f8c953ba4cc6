"""The crash test: `interlink serve` is SIGKILLed mid-run and restarted; nothing is lost.

Every duplicate the receiver sees must carry an Idempotency-Key it already saw (a re-send of a
lease the dead process held), never a new identity, and the store's counts must match the
receiver's unique keys.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from tests.acceptance.conftest import COMMAND, order, write
from tests.acceptance.test_serve import free_port
from tests.receiver import Receiver

TOKEN = "crash-token"
# serve refuses to start without a management credential; status is read with it.
ADMIN_TOKEN = "crash-admin-token"
DOCUMENTS = 600
CONCURRENCY = 8

TOPOLOGY = """\
database: sqlite:///hub.db
systems:
  trading: {{token_env: CRASH_TOKEN}}
  treasury: {{url: "{url}", concurrency: {concurrency}, timeout: 2s}}
  finance: {{url: "{url}", concurrency: {concurrency}, timeout: 2s}}
documents:
  payment_order: {{key: order_no}}
flows:
  trading-treasury: {{from: trading, to: treasury, document: payment_order, path: /t,
                      ordered: true, retry: [1s]}}
  trading-finance: {{from: trading, to: finance, document: payment_order, path: /f,
                     retry: [1s]}}
engine:
  lease: 1s
  batch: 50
"""


async def start_serve(cwd: Path, port: int) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        *COMMAND,
        "serve",
        "--port",
        str(port),
        cwd=cwd,
        env={**os.environ, "CRASH_TOKEN": TOKEN, "INTERLINK_ADMIN_TOKEN": ADMIN_TOKEN},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as r:
                    if r.status == 200:
                        return proc
            except aiohttp.ClientConnectionError:
                pass
            assert proc.returncode is None, "serve ended early"
            assert time.monotonic() < deadline, "serve did not start listening"
            await asyncio.sleep(0.05)  # waiting for a process to listen, not for a retry


async def status(port: int) -> dict:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"http://127.0.0.1:{port}/api/v1/status",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ) as r,
    ):
        return await r.json()


@pytest.mark.slow
async def test_sigkill_mid_run_loses_nothing(tmp_path: Path) -> None:
    receiver = await Receiver().start()
    receiver.hang(0.01)  # keep requests in flight so the kill lands on leased deliveries
    write(
        tmp_path / "interlink.yaml",
        TOPOLOGY.format(url=receiver.url, concurrency=CONCURRENCY),
    )
    port = free_port()
    proc = await start_serve(tmp_path, port)
    ids: list[str] = []
    try:
        async with aiohttp.ClientSession() as session:
            for start in range(0, DOCUMENTS, 100):
                batch = [
                    {"type": "payment_order", "payload": order(f"PO-{i:05d}")}
                    for i in range(start, start + 100)
                ]
                async with session.post(
                    f"http://127.0.0.1:{port}/api/v1/documents",
                    json=batch,
                    headers={"Authorization": f"Bearer {TOKEN}"},
                ) as r:
                    assert r.status == 202
                    ids.extend(item["id"] for item in await r.json())
        # Kill once a good part has gone out, with requests in flight.
        deadline = time.monotonic() + 30
        while len(receiver.requests) < DOCUMENTS // 2:
            assert time.monotonic() < deadline, "deliveries did not start"
            await asyncio.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        sent_before_kill = len(receiver.requests)
        assert sent_before_kill < 2 * DOCUMENTS, "everything went out before the kill"

        proc = await start_serve(tmp_path, port)
        deadline = time.monotonic() + 60
        while True:
            flows = (await status(port))["flows"]
            if all(f["delivered"] == DOCUMENTS for f in flows.values()):
                break
            assert time.monotonic() < deadline, flows
            await asyncio.sleep(0.1)
        for flow in flows.values():
            assert flow["dead"] == 0 and flow["pending"] == 0 and flow["held"] == {}
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 20)
        await receiver.stop()

    by_path: dict[str, Counter[str]] = {"/t": Counter(), "/f": Counter()}
    for request in receiver.requests:
        by_path[request.path][request.headers["Idempotency-Key"]] += 1
    for path, keys in by_path.items():
        # Every accepted document arrived on every flow, and nothing else did.
        assert set(keys) == set(ids), path
        # Duplicates are re-sends of leases the killed process held: bounded by what it could
        # have had claimed (batch) and in flight (concurrency) at the kill, per flow.
        duplicates = sum(n - 1 for n in keys.values())
        assert duplicates <= 50 + CONCURRENCY, (path, duplicates)
