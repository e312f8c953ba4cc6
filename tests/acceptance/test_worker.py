"""The worker as a process against a real receiver: a rejected document goes dead, is re-pushed
from the command line, and is delivered; SIGTERM stops the worker cleanly."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.conftest import COMMAND, run_cli_async, write
from tests.receiver import Receiver

TOPOLOGY = """\
timezone: Asia/Shanghai
database: sqlite:///hub.db
systems:
  trading: {{}}
  finance: {{url: "{finance}", timeout: 2s}}
documents:
  payment_order: {{key: order_no}}
flows:
  trading-finance:
    {{from: trading, to: finance, document: payment_order, path: /trades, retry: [5s]}}
"""


async def status(tmp_path: Path) -> dict[str, Any]:
    result = await run_cli_async("status", "--json", cwd=tmp_path)
    assert result.code == 0, result.err
    data: dict[str, Any] = json.loads(result.out)
    return data["flows"]["trading-finance"]


async def until(tmp_path: Path, check: str, value: int) -> dict[str, Any]:
    """Poll `status --json` until the worker has made the first attempt; not a retry wait."""
    deadline = time.monotonic() + 20
    while True:
        flow = await status(tmp_path)
        if flow[check] == value:
            return flow
        assert time.monotonic() < deadline, flow
        await asyncio.sleep(0.2)


@pytest.fixture
async def worker(tmp_path: Path, finance: Receiver) -> AsyncIterator[asyncio.subprocess.Process]:
    write(tmp_path / "interlink.yaml", TOPOLOGY.format(finance=finance.url))
    proc = await asyncio.create_subprocess_exec(
        *COMMAND,
        "worker",
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    yield proc
    if proc.returncode is None:
        proc.kill()
        await proc.wait()


async def test_rejected_then_repushed_from_the_cli(
    tmp_path: Path, finance: Receiver, worker: asyncio.subprocess.Process
) -> None:
    finance.respond(422, "account closed")
    orders = write(
        tmp_path / "orders.ndjson",
        '{"order_no": "PO-1", "amount": "1"}\n{"order_no": "PO-2", "amount": "2"}\n',
    )
    pushed = await run_cli_async("push", str(orders), "--type", "payment_order", cwd=tmp_path)
    assert pushed.code == 0, pushed.err

    await until(tmp_path, "dead", 2)
    shown = await run_cli_async("show", "PO-1", cwd=tmp_path)
    assert "HTTP 422: account closed" in shown.out
    assert "rejected" in shown.out

    preview = await run_cli_async("repush", "--reason", "rejected", "--dry-run", cwd=tmp_path)
    assert preview.code == 0, preview.err
    assert "2 deliveries would be re-pushed" in preview.out

    refused = await run_cli_async("repush", "--reason", "rejected", cwd=tmp_path)
    assert refused.code == 2
    assert "this would re-push 2 deliveries" in refused.err

    finance.respond(200, '{"ok": true}')
    dead = await run_cli_async(
        "deliveries", "--status", "dead", "--key", "PO-1", "--json", cwd=tmp_path
    )
    one = json.loads(dead.out)[0]["id"]
    repushed = await run_cli_async("repush", str(one), cwd=tmp_path)
    assert repushed.code == 0, repushed.err
    assert f"re-pushed delivery {one}" in repushed.out
    await until(tmp_path, "delivered", 1)

    bulk = await run_cli_async("repush", "--reason", "rejected", "--yes", cwd=tmp_path)
    assert bulk.code == 0, bulk.err
    assert "re-pushed 1 deliveries" in bulk.out
    flow = await until(tmp_path, "delivered", 2)
    assert flow["dead"] == 0
    assert finance.keys().count(finance.keys()[-1]) == 2  # sent, rejected, sent again

    worker.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(worker.communicate(), 20)
    assert worker.returncode == 0, err.decode()
    assert b"worker stopped" in err
    assert b"Traceback" not in err


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
async def test_worker_stops_on_sigint(tmp_path: Path, worker: asyncio.subprocess.Process) -> None:
    assert worker.stderr is not None
    line = b""
    while b"delivering 1 flows" not in line:
        line = await asyncio.wait_for(worker.stderr.readline(), 20)
        assert line, "the worker ended before it started"
    worker.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(worker.communicate(), 20)
    assert worker.returncode == 0, err.decode()
