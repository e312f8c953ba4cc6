"""A file drop's ``done/`` and ``failed/`` folders planted as symbolic links by an upstream
would have the hub move files anywhere it may write: the source refuses to take a file and
says why, and the link's target stays untouched."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from interlink.clock import FakeClock
from interlink.config import Topology
from interlink.features.registry import FEATURES
from interlink.features.sources.service import sources
from interlink.service import Hub

TOPOLOGY = """\
timezone: Asia/Shanghai
database: sqlite:///hub.db
systems:
  trading:
    sources:
      drop:
        kind: files
        path: drop
        document: payment_order
        settle: 0s
  treasury:
    url: http://127.0.0.1:9
documents:
  payment_order: {key: order_no}
flows:
  trading-treasury: {from: trading, to: treasury, document: payment_order, path: /p}
"""


@pytest.fixture
def hub(
    write_topology: Callable[[str], Topology], tmp_path: Path, clock: FakeClock
) -> Iterator[Hub]:
    (tmp_path / "drop").mkdir()
    h = Hub(write_topology(TOPOLOGY), clock=clock, features=FEATURES)
    yield h
    h.store.close()


@pytest.mark.parametrize("side", ["done", "failed"])
def test_a_symlinked_done_or_failed_folder_is_refused(hub: Hub, tmp_path: Path, side: str) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "drop" / side).symlink_to(elsewhere, target_is_directory=True)
    (tmp_path / "drop" / "orders.csv").write_text("order_no\nA-1\n")
    (tmp_path / "drop" / "bad.csv").write_bytes(b"")  # would go to failed/
    result = sources(hub).poll("drop")
    assert "symbolic link" in result["error"] and f"{side}/" in result["error"]
    assert list(elsewhere.iterdir()) == []
    assert (tmp_path / "drop" / "orders.csv").exists()
    assert (tmp_path / "drop" / "bad.csv").exists()


def test_missing_done_and_failed_folders_are_made(hub: Hub, tmp_path: Path) -> None:
    (tmp_path / "drop" / "orders.csv").write_text("order_no\nA-1\n")
    result = sources(hub).poll("drop")
    assert "error" not in result, result
    assert (tmp_path / "drop" / "failed").is_dir()
    assert (tmp_path / "drop" / "done" / "orders.csv").exists()
