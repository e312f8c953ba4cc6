"""Helpers for the message broker tests: the broker's address or a clear skip, a hub whose one
downstream is a broker, and a loopback relay to take the broker away mid-run and bring it back."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import textwrap
import uuid
from collections.abc import Awaitable, Callable, Sized
from datetime import datetime
from pathlib import Path

import pytest

from interlink.clock import FakeClock
from interlink.config import load
from interlink.features.registry import FEATURES
from interlink.service import Hub
from interlink.transports.http import HttpTransport
from tests.conftest import delivery_of, pay, submit

FLOW = "trading-ledger"

# {broker} is the system's broker block; the flow is ordered so per-key order can be checked.
TOPOLOGY = """\
timezone: UTC
database: sqlite:///hub.db
systems:
  trading:
    token_env: TEST_TRADING_TOKEN
  ledger:
    transport: {transport}
    timeout: 2s
    {transport}: {broker}
documents:
  payment_order:
    key: order_no
    amount: amount
flows:
  trading-ledger:
    from: trading
    to: ledger
    document: payment_order
    ordered: true
    retry: [5s, 30s]
    give_up_after: 1h
engine:
  circuit_threshold: 2
  probe_interval: 10s
"""


def unique(prefix: str) -> str:
    """A name no other test (or person on this machine) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def reachable(env: str, default: str, port: int) -> str:
    """The broker URL from ``env``; skips the test when nothing listens there, unless CI."""
    url = os.environ.get(env, default)
    host = url.split("@")[-1].split("//")[-1].split("/")[0]
    name, _, given = host.partition(":")
    try:
        socket.create_connection((name, int(given or port)), timeout=1).close()
    except OSError as error:
        message = f"no broker at {host} ({error}); set {env} to run these tests"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return url


def broker_hub(tmp_path: Path, clock: FakeClock, transport: str, broker: str) -> Hub:
    path = tmp_path / "interlink.yaml"
    path.write_text(textwrap.dedent(TOPOLOGY.format(transport=transport, broker=broker)))
    # The HTTP transport is injected as the other tests inject it; no flow uses it here.
    return Hub(load(path), clock=clock, transport=HttpTransport(), features=FEATURES)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Relay:
    """A TCP relay on loopback to a broker: ``stop()`` drops every connection through it and
    stops listening, as a broker that goes down mid-run; ``start()`` brings it back on the same
    port."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.connections = 0

    async def start(self) -> Relay:
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", self.port, reuse_address=True
        )
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()  # a connection lost, not closed politely
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(
            _pipe(reader, up_writer), _pipe(up_reader, writer), return_exceptions=True
        )
        for w in (writer, up_writer):
            self._writers.discard(w)
            w.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.CancelledError):
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    writer.transport.abort()


class Silent:
    """A loopback server that accepts connections and never says a word: a broker that hangs."""

    def __init__(self) -> None:
        self.connections = 0
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> Silent:
        self._server = await asyncio.start_server(self._hold, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def _hold(self, _: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)

    async def stop(self) -> None:
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        await self._server.wait_closed()


async def lose_and_recover(
    hub: Hub, relay: Relay, clock: FakeClock, sent: Callable[[], Awaitable[Sized]]
) -> list[dict]:
    """Take the broker away behind ``relay`` after one delivery, submit four more, check they are
    held with the circuit open and nothing more reached the broker (``sent``), bring it back and
    probe: the circuit closes and all four are delivered. Returns the four documents."""
    await relay.stop()  # the broker goes: its connection is cut and nothing listens
    later = [
        *await submit(hub, pay("K1", amount="2.00")),
        *await submit(hub, pay("K2")),
        *await submit(hub, pay("K1", amount="3.00")),
        *await submit(hub, pay("K3")),
    ]
    await hub.engine.drain()

    status = hub.status()
    assert status["systems"]["ledger"]["circuit"] == "open"
    states = {delivery_of(hub, d["id"], FLOW).state for d in later}
    assert states <= {"held: downstream_down", "held: blocked"}, states
    assert len(await sent()) == 1  # only the first, before the outage

    await relay.start()  # back on the same port
    clock.set(datetime.fromisoformat(status["systems"]["ledger"]["next_probe_at"]))
    await hub.engine.drain()

    assert hub.status()["systems"]["ledger"]["circuit"] == "closed"
    for d in later:
        assert delivery_of(hub, d["id"], FLOW).status == "delivered"
    return later
