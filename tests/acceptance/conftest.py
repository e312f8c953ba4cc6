"""Acceptance tests run the ``interlink`` command as a real process, as users and scripts do."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

COMMAND = [sys.executable, "-m", "interlink.cli"]
TIMEOUT = 60


def _env() -> dict[str, str]:
    # Wide enough that tables never wrap the words the tests look for.
    return {**os.environ, "COLUMNS": "200"}


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def run_cli(*args: str, cwd: Path) -> Run:
    done = subprocess.run(
        [*COMMAND, *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


async def run_cli_async(*args: str, cwd: Path) -> Run:
    """The same, without blocking the loop that serves a test's receivers."""
    proc = await asyncio.create_subprocess_exec(
        *COMMAND,
        *args,
        cwd=cwd,
        env=_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(), err.decode())


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., Run]:
    def run(*args: str) -> Run:
        result = run_cli(*args, cwd=tmp_path)
        assert "Traceback" not in result.err, result.err
        return result

    return run


@pytest.fixture
def example(tmp_path: Path, cli: Callable[..., Run]) -> Path:
    """The example topology from `interlink init`, with a fresh store beside it."""
    assert cli("init").code == 0
    return tmp_path / "interlink.yaml"


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def order(no: str, kind: str = "pay", amount: str = "10.00") -> dict[str, str]:
    return {
        "order_no": no,
        "kind": kind,
        "amount": amount,
        "currency": "CNY",
        "payee_account": "6222000011112222",
    }
