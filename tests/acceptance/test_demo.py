"""`interlink demo --fast` end to end: an outage, a rejection, a re-push, nothing lost."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.acceptance.conftest import COMMAND


@pytest.mark.slow
def test_demo_loses_nothing(tmp_path: Path) -> None:
    done = subprocess.run(
        [*COMMAND, "demo", "--fast"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0, done.stdout + done.stderr
    assert lines[-1].endswith(" delivered, 0 lost"), lines[-1]
    submitted = int(lines[-1].split()[0])
    assert submitted > 100
    assert "treasury circuit opened" in done.stdout
    assert "treasury circuit closed" in done.stdout
    assert "finance rejected PO-0042: HTTP 422: account closed" in done.stdout
    assert "re-pushed delivery" in done.stdout
    # What a person would type, not the Python call behind it; the fan-out and the ordering
    # explained rather than left to look like a fault.
    assert "as you would with `interlink repush " in done.stdout
    assert "hub.repush_one" not in done.stdout
    assert "each document goes to 2 flows, so " in done.stdout
    assert "the ordered flow to treasury delivered 0 refunds before their payment" in done.stdout
    assert "out of order over all flows" not in done.stdout
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []  # everything in a temporary folder of its own
