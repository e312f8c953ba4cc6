"""`interlink serve` as a process: it answers on the port it was given and stops on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest

from tests.acceptance.conftest import COMMAND, write

TOPOLOGY = """\
database: sqlite:///hub.db
systems:
  trading: {}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.mark.parametrize("workers", [True, False], ids=["workers", "no-workers"])
async def test_serve_answers_and_stops(tmp_path: Path, workers: bool) -> None:
    write(tmp_path / "interlink.yaml", TOPOLOGY)
    port = free_port()
    extra = [] if workers else ["--no-workers"]
    proc = await asyncio.create_subprocess_exec(
        *COMMAND,
        "serve",
        "--port",
        str(port),
        *extra,
        cwd=tmp_path,
        # serve refuses to start without a management credential (tests/security covers that).
        env={**os.environ, "INTERLINK_ADMIN_TOKEN": "serve-admin-token"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                        assert response.status == 200
                        break
                except aiohttp.ClientConnectionError:
                    assert proc.returncode is None, "serve ended early"
                    assert time.monotonic() < deadline, "serve did not start listening"
                    await asyncio.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 20)
        # uvicorn shuts down cleanly, then re-raises the signal it caught (uvicorn >= 0.29).
        assert proc.returncode in (0, -signal.SIGTERM), err.decode()
        assert b"Application shutdown complete" in err
        assert b"Traceback" not in err
        assert b"Unclosed" not in err
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_serve_refuses_a_bad_listen_address(tmp_path: Path) -> None:
    write(tmp_path / "interlink.yaml", TOPOLOGY)
    done = subprocess.run(
        [*COMMAND, "serve"],
        cwd=tmp_path,
        env={"INTERLINK_LISTEN": "nowhere", "PATH": "/usr/bin:/bin"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "INTERLINK_LISTEN" in done.stderr and "Traceback" not in done.stderr
