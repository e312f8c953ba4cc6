"""Chaos: workers SIGKILLed and restarted at random, PostgreSQL itself restarted once, and a
receiver that flaps, times out and answers 429 — during one long run, on both stores.

At the end every accepted document is delivered, duplicates at the receiver are bounded by
what the killed workers held leased, each one a repeated Idempotency-Key, and the store's
counts match the receiver's.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from tests.acceptance.test_serve import free_port
from tests.conftest import ADMIN_TOKEN
from tests.receiver import Received, Receiver

COMMAND = [sys.executable, "-m", "interlink.cli"]
TOKEN = "chaos-token"
DOCUMENTS = 1500
BATCH = 100  # engine batch: the most one worker holds leased, with its concurrency on top
CONCURRENCY = 16

TOPOLOGY = f"""\
database: sqlite:///chaos.db
systems:
  trading: {{token_env: CHAOS_TOKEN}}
  treasury: {{url: "{{url}}/t", timeout: 300ms, concurrency: {CONCURRENCY}}}
  finance: {{url: "{{url}}/f", timeout: 300ms, concurrency: {CONCURRENCY}}}
documents:
  payment_order: {{key: order_no}}
flows:
  trading-treasury: {{from: trading, to: treasury, document: payment_order, ordered: true,
                      retry: [200ms, 500ms, 1s], give_up_after: 1h}}
  trading-finance: {{from: trading, to: finance, document: payment_order,
                     retry: [200ms, 500ms, 1s], give_up_after: 1h}}
engine:
  lease: 2s
  batch: {BATCH}
  circuit_threshold: 20
  probe_interval: 500ms
  probe_max: 2s
"""


def _start(kind: str, cwd: Path, env: dict[str, str], port: int | None = None) -> subprocess.Popen:
    args = (
        [*COMMAND, kind] if port is None else [*COMMAND, kind, "--no-workers", "--port", str(port)]
    )
    return subprocess.Popen(
        args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


async def _status(session: aiohttp.ClientSession, port: int) -> dict | None:
    try:
        async with session.get(
            f"http://127.0.0.1:{port}/api/v1/status",
            # status is for people: the admin token serve inherits from the test's environment
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ) as r:
            return await r.json() if r.status == 200 else None
    except aiohttp.ClientError:
        return None


@pytest.mark.slow
@pytest.mark.serial  # restarts PostgreSQL: nothing else may use it meanwhile
async def test_chaos_loses_nothing(tmp_path: Path, database: str) -> None:
    rng = random.Random(7)
    flapping = True
    accepted: Counter[tuple[str, str]] = Counter()  # (path, key) -> 2xx answers given
    late = 0  # 2xx answers given after the client had given up (it will send again)

    async def answer(received: Received) -> web.StreamResponse:
        nonlocal late
        roll = rng.random()
        key = (received.path, received.headers.get("Idempotency-Key", ""))
        if flapping and roll < 0.15:
            return web.Response(status=503, text="flapping")
        if flapping and roll < 0.22:
            late += 1
            accepted[key] += 1  # the downstream booked it, but answers too late
            await asyncio.sleep(1.0)  # past the 300 ms timeout
            return web.Response(status=200)
        if flapping and roll < 0.30:
            return web.Response(status=429, headers={"Retry-After": "1"})
        accepted[key] += 1
        return web.Response(status=200, text='{"ok":true}')

    receiver = await Receiver().start()
    receiver.respond_with(answer)
    (tmp_path / "interlink.yaml").write_text(TOPOLOGY.replace("{url}", receiver.url))
    env = {**os.environ, "CHAOS_TOKEN": TOKEN}
    port = free_port()
    api = _start("serve", tmp_path, env, port)
    workers = [_start("worker", tmp_path, env) for _ in range(2)]
    kills = 0
    ids: list[str] = []
    try:
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 30
            while await _status(session, port) is None:
                assert time.monotonic() < deadline, "API did not start"
                await asyncio.sleep(0.1)
            for start in range(0, DOCUMENTS, 250):
                batch = [
                    {"type": "payment_order", "payload": {"order_no": f"K{i % 1000}", "n": i}}
                    for i in range(start, start + 250)
                ]
                async with session.post(
                    f"http://127.0.0.1:{port}/api/v1/documents",
                    json=batch,
                    headers={"Authorization": f"Bearer {TOKEN}"},
                ) as r:
                    assert r.status == 202
                    ids.extend(item["id"] for item in await r.json())

            # Chaos for a while: kill and restart workers; restart PostgreSQL once.
            chaos_end = time.monotonic() + 12
            restarted_pg = database != "postgresql"
            while time.monotonic() < chaos_end:
                await asyncio.sleep(rng.uniform(0.8, 2.0))
                victim = rng.randrange(len(workers))
                workers[victim].send_signal(signal.SIGKILL)
                workers[victim].wait()
                kills += 1
                workers[victim] = _start("worker", tmp_path, env)
                if not restarted_pg and time.monotonic() > chaos_end - 8:
                    version = sorted(os.listdir("/etc/postgresql"))[-1]
                    subprocess.run(
                        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
                        check=True,
                        capture_output=True,
                        timeout=60,
                    )
                    restarted_pg = True
            assert restarted_pg
            flapping = False

            deadline = time.monotonic() + 120
            while True:
                status = await _status(session, port)
                if status is not None and all(
                    f["delivered"] == DOCUMENTS for f in status["flows"].values()
                ):
                    break
                assert time.monotonic() < deadline, status
                await asyncio.sleep(0.25)
    finally:
        for proc in [api, *workers]:
            proc.send_signal(signal.SIGTERM)
        for proc in [api, *workers]:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        await receiver.stop()

    for flow in status["flows"].values():
        assert flow["dead"] == 0 and flow["pending"] == 0 and flow["held"] == {}
    for prefix in ("/t/", "/f/"):
        ok = Counter(
            r.headers["Idempotency-Key"]
            for r in receiver.requests
            if r.path == prefix and r.headers.get("Idempotency-Key")
        )
        # Every accepted document reached the receiver on this flow; nothing else did.
        assert set(ok) == set(ids), prefix
    # Booked twice: only re-sends of a document the receiver had already answered 2xx for —
    # after a late answer, or held leased by a killed worker (a batch claimed ahead, plus
    # what was in flight), each with the same Idempotency-Key (counted per key above).
    twice = sum(n - 1 for n in accepted.values() if n > 1)
    assert twice <= late + kills * (BATCH + CONCURRENCY), (twice, late, kills)
    assert set(accepted) == {(p, i) for p in ("/t/", "/f/") for i in ids}
    assert kills >= 3
