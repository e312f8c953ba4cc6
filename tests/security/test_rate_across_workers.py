"""Declared limits hold across worker processes while workers start, die and rejoin.

Three ``interlink worker`` processes on PostgreSQL work a backlog; on a fixed schedule one is
SIGKILLed (its registry row stays until it expires) and restarted, at once or after its row
has expired. The downstreams, in a process of their own, count what arrives: in EVERY
one-second window (sliding, from each arrival) no system or flow gets more than its declared
rate, and the system with a declared concurrency never has more requests open at once than
it allows.

Before worker shares were granted through the registry, a worker counted the workers it saw
at its first heartbeat and took that share at once, while the others kept theirs: on start
and on every rejoin the downstream got up to twice its rate; and ``ceil(2 / 3)`` gave each
of three workers one of a system's two connections.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from interlink.config import load
from interlink.features.registry import FEATURES
from interlink.intake import Item
from interlink.service import Hub
from tests.acceptance.test_serve import free_port

COMMAND = [sys.executable, "-m", "interlink.cli", "worker"]
TOKEN = "limits-token"
SYSTEM_RATE = 200  # treasury, over its two flows
FLOW_RATE = 100  # trading-finance
CONCURRENCY = 2  # member, fewer than the workers
HOLD = 0.025  # seconds member keeps each request open
ORDERS = 6000
CUSTOMERS = 3000
RUN = 26.0  # seconds from the workers' start to the end of the schedule

TOPOLOGY = f"""\
database: sqlite:///unused.db
systems:
  trading: {{token_env: LIMITS_TOKEN}}
  treasury: {{url: "{{url}}/t", rate: {SYSTEM_RATE}/s}}
  finance: {{url: "{{url}}/f"}}
  member: {{url: "{{url}}/m", concurrency: {CONCURRENCY}}}
documents:
  payment_order: {{key: order_no}}
  customer: {{key: customer_id}}
flows:
  trading-treasury: {{from: trading, to: treasury, document: payment_order, path: /pay,
                      retry: [1s]}}
  customers-treasury: {{from: trading, to: treasury, document: customer, path: /cust,
                        retry: [1s]}}
  trading-finance: {{from: trading, to: finance, document: payment_order,
                     rate: {FLOW_RATE}/s, retry: [1s]}}
  trading-member: {{from: trading, to: member, document: customer, retry: [1s]}}
engine:
  batch: 200
"""

# (seconds after the start, what happens): a kill with an immediate restart, a kill whose
# worker rejoins only after its row has expired (the others have grown meanwhile), and more.
SCHEDULE: list[tuple[float, str, int]] = [
    (4.0, "kill", 0),
    (4.0, "start", 0),
    (7.0, "kill", 1),
    (15.0, "start", 1),
    (18.0, "kill", 2),
    (19.0, "start", 2),
    (22.0, "kill", 0),
    (22.0, "start", 0),
]


def busiest_window(times: list[float], width: float = 1.0) -> int:
    """The most arrivals in any window ``[t, t + width)``, t ranging over the arrivals (a
    window holding the most arrivals can always be slid to start at one of them)."""
    times = sorted(times)
    most = 0
    end = 0
    for start, t in enumerate(times):
        while end < len(times) and times[end] < t + width:
            end += 1
        most = max(most, end - start)
    return most


def test_busiest_window_slides() -> None:
    # Aligned seconds would see 2 and 2; the window from 0.6 to 1.6 holds all four.
    assert busiest_window([0.6, 0.9, 1.1, 1.5]) == 4
    assert busiest_window([0.0, 1.0, 2.0]) == 1
    assert busiest_window([]) == 0


def _downstream(port: int) -> None:
    """The three downstreams, in a process of their own, so that what the test process does
    meanwhile (starting and killing workers) never delays when an arrival is counted."""
    arrivals: dict[str, list[float]] = defaultdict(list)
    open_now = 0
    most_open = 0

    async def receive(request: web.Request) -> web.Response:
        nonlocal open_now, most_open
        arrivals[request.path[:3]].append(time.monotonic())
        await request.read()
        if request.path.startswith("/m/"):
            open_now += 1
            most_open = max(most_open, open_now)
            try:
                await asyncio.sleep(HOLD)
            finally:
                open_now -= 1
        return web.Response(text='{"ok":true}', content_type="application/json")

    async def report(_request: web.Request) -> web.Response:
        return web.json_response({"arrivals": arrivals, "most_open": most_open})

    app = web.Application()
    app.router.add_get("/_report", report)
    app.router.add_post("/{tail:.*}", receive)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def _report(session: aiohttp.ClientSession, url: str) -> dict | None:
    try:
        async with session.get(url + "/_report") as r:
            return dict(await r.json())
    except aiohttp.ClientConnectionError:
        return None


async def _backlog(directory: Path) -> None:
    hub = Hub(load(directory / "interlink.yaml"), features=FEATURES)
    try:
        source = hub.topology.systems["trading"]
        for start in range(0, ORDERS, 500):
            await hub.intake.submit(
                source,
                [Item("payment_order", {"order_no": f"PO-{i}"}) for i in range(start, start + 500)],
            )
        for start in range(0, CUSTOMERS, 500):
            await hub.intake.submit(
                source,
                [Item("customer", {"customer_id": f"C-{i}"}) for i in range(start, start + 500)],
            )
    finally:
        await hub.close()


async def _run(directory: Path, url: str) -> None:
    """The backlog, then three workers killed and restarted on the schedule."""
    (directory / "interlink.yaml").write_text(TOPOLOGY.replace("{url}", url))
    env = {**os.environ, "LIMITS_TOKEN": TOKEN}
    os.environ["LIMITS_TOKEN"] = TOKEN
    try:
        await _backlog(directory)
    finally:
        del os.environ["LIMITS_TOKEN"]

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            COMMAND, cwd=directory, env=env, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    # All three at once, on a backlog: each one's first look at the registry races the others.
    workers = [start() for _ in range(3)]
    everyone = list(workers)
    t0 = time.monotonic()
    try:
        for at, action, slot in SCHEDULE:
            await asyncio.sleep(max(0.0, t0 + at - time.monotonic()))
            if action == "kill":
                workers[slot].send_signal(signal.SIGKILL)
            else:
                workers[slot] = start()
                everyone.append(workers[slot])
        await asyncio.sleep(max(0.0, t0 + RUN - time.monotonic()))
    finally:
        for proc in everyone:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in everyone:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.mark.slow
@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
async def test_limits_hold_while_workers_die_and_rejoin(tmp_path: Path, database: str) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    downstream = multiprocessing.get_context("spawn").Process(
        target=_downstream, args=(port,), daemon=True
    )
    downstream.start()
    try:
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 30
            while await _report(session, url) is None:
                assert time.monotonic() < deadline, "the downstream did not start"
                await asyncio.sleep(0.1)
            await _run(tmp_path, url)
            report = await _report(session, url)
    finally:
        downstream.terminate()
        downstream.join(10)
    assert report is not None
    treasury, finance, member = (report["arrivals"].get(p, []) for p in ("/t/", "/f/", "/m/"))
    # The limits were the bottleneck, not the backlog or the machine: the test can fail.
    assert len(treasury) > SYSTEM_RATE * RUN / 3, len(treasury)
    assert len(finance) > FLOW_RATE * RUN / 3, len(finance)
    assert len(member) > CONCURRENCY / HOLD * RUN / 4, len(member)
    seen = {
        "treasury (system rate)": (busiest_window(treasury), SYSTEM_RATE),
        "trading-finance (flow rate)": (busiest_window(finance), FLOW_RATE),
        "member (concurrency)": (report["most_open"], CONCURRENCY),
    }
    over = {name: f"{got} > {limit}" for name, (got, limit) in seen.items() if got > limit}
    assert not over, f"limits exceeded (busiest one-second window, most open at once): {over}"
