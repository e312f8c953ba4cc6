"""Readiness and maintenance for systems reached otherwise than by HTTP: a file-exchange
target is reachable when its folder may be written (or its SFTP server, asyncssh's own on
loopback with keys made here, logs us in); a broker target fails while its URL is unset; and a
maintenance window may be announced for any system that receives deliveries."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from interlink.clock import FakeClock
from interlink.config import Topology
from interlink.errors import InputError
from interlink.features.maintenance.service import maintenance
from interlink.features.readiness.checklist import (
    FAILED,
    PASSED,
    check,
    probe_system,
    reachable_item,
)
from interlink.features.registry import FEATURES
from interlink.service import Hub
from tests.sftp_server import SftpServer

TOPOLOGY = """\
timezone: UTC
database: sqlite:///hub.db
systems:
  trading:
    token_env: TEST_TRADING_TOKEN
  bank:
    transport: file
    file_exchange:
      location: {location}
{access}
      columns: [{{name: order_no, field: order_no}}]
      results: {{location: {results}, key: order_no, status: status, accepted: ["S"]}}
  ledger:
    transport: amqp
    amqp: {{url_env: TEST_LEDGER_AMQP_URL}}
documents:
  payment_order: {{key: order_no}}
flows:
  trading-bank: {{from: trading, to: bank, document: payment_order}}
  trading-ledger: {{from: trading, to: ledger, document: payment_order}}
"""
REACHABLE = "downstream reachable"


def text(location: str = "out", results: str = "in", access: str = "") -> str:
    return TOPOLOGY.format(location=location, results=results, access=access)


def reachable(result: dict[str, Any], flow: str) -> dict[str, str]:
    [found] = [f for f in result["flows"] if f["flow"] == flow]
    [item] = [i for i in found["items"] if i["item"] == REACHABLE]
    return item


@pytest.fixture
def hub(write_topology: Callable[[str], Topology], tmp_path: Path) -> Any:
    for name in ("out", "in"):
        (tmp_path / name).mkdir()
    h = Hub(write_topology(text()), clock=FakeClock(), features=FEATURES)
    yield h
    h.store.close()


async def test_a_file_target_is_reachable_when_its_folders_may_be_used(
    hub: Hub, tmp_path: Path
) -> None:
    item = reachable(await check(hub, "trading-bank"), "trading-bank")
    assert item["status"] == PASSED, item
    assert f"{tmp_path / 'out'}: a folder this host may write" in item["detail"]
    assert f"{tmp_path / 'in'}: a folder this host may read" in item["detail"]
    assert list((tmp_path / "out").iterdir()) == []  # nothing was written there

    shutil.rmtree(tmp_path / "in")
    item = reachable(await check(hub, "trading-bank"), "trading-bank")
    assert item["status"] == FAILED
    assert item["detail"] == f"{tmp_path / 'in'}: no such folder"
    assert "systems.bank.file_exchange" in item["next"]


async def test_a_broker_target_without_its_url_fails_and_says_which_variable(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The broker itself is probed in test_readiness_brokers.py."""
    monkeypatch.delenv("TEST_LEDGER_AMQP_URL", raising=False)
    item = reachable(await check(hub, "trading-ledger"), "trading-ledger")
    assert item["status"] == FAILED
    assert item["detail"] == "ledger: TEST_LEDGER_AMQP_URL is not set (the broker URL)"


def test_maintenance_windows_are_for_every_system_that_receives_deliveries(hub: Hub) -> None:
    service = maintenance(hub)
    start = datetime(2030, 1, 7, 20, 0, tzinfo=UTC)
    for system in ("bank", "ledger"):
        found = service.add(
            system, start, start + timedelta(hours=2), "release", "ops", dry_run=True
        )
        assert found["dry_run"] and not found["errors"], found
    with pytest.raises(InputError, match="has no url"):
        service.add("trading", start, start + timedelta(hours=2), "release", "ops", dry_run=True)
    with pytest.raises(InputError, match=r"downstream systems: bank, ledger\)"):
        service.add("nobody", start, start + timedelta(hours=2), "release", "ops", dry_run=True)


@pytest.fixture
async def sftp(tmp_path: Path) -> AsyncIterator[SftpServer]:
    root = tmp_path / "server"
    for name in ("upload", "download"):
        (root / name).mkdir(parents=True)
    keys = tmp_path / "keys"
    keys.mkdir()
    server = SftpServer(root, keys)
    await server.start()
    yield server
    await server.stop()


async def test_an_sftp_target_is_reachable_when_the_server_logs_us_in(
    write_topology: Callable[[str], Topology], sftp: SftpServer, tmp_path: Path
) -> None:
    where = f"sftp://interlink@127.0.0.1:{sftp.port}"
    access = (
        f"      key_file: {sftp.key_file}\n      known_hosts: {sftp.known_hosts}\n"
        "      connect_timeout: 2s"
    )
    topology = write_topology(text(f"{where}/upload", f"{where}/download", access))
    bank = topology.systems["bank"]

    item = reachable_item(bank, *await probe_system(bank))
    assert item.status == PASSED, item
    assert item.detail == (
        f"{where}/upload: logged in and listed the folder; {where}/download: logged in and "
        "listed the folder (no file sent)"
    )
    assert list((sftp.root / "upload").iterdir()) == []

    # A server whose host key is not the known one is not reached.
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    sftp.known_hosts.write_text(f"[127.0.0.1]:{sftp.port} {other}\n")
    item = reachable_item(bank, *await probe_system(bank))
    assert item.status == FAILED and "host key" in item.detail.lower(), item

    await sftp.stop()
    item = reachable_item(bank, *await probe_system(bank))
    assert item.status == FAILED and "connect call failed" in item.detail.lower(), item
