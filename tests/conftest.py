"""Shared fixtures: a fake clock, real loopback receivers, and hubs on a fresh SQLite store."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from interlink.clock import FakeClock
from interlink.config import Topology, load
from interlink.service import Hub
from interlink.transports.http import HttpTransport
from tests.receiver import Receiver

TOPOLOGY = """\
timezone: Asia/Shanghai
database: sqlite:///hub.db
systems:
  trading:
    token_env: TEST_TRADING_TOKEN
  treasury:
    url: {treasury}
    secret_env: TEST_TREASURY_SECRET
    timeout: 2s
  finance:
    url: {finance}
    timeout: 2s
documents:
  payment_order:
    key: order_no
    deadline: pay_before
    amount: amount
flows:
  trading-treasury:
    from: trading
    to: treasury
    document: payment_order
    path: /payments
    ordered: true
    retry: [5s, 30s, 2m]
    give_up_after: 1h
  trading-finance:
    from: trading
    to: finance
    document: payment_order
    path: /trades
    retry: [5s, 30s, 2m]
    give_up_after: 1h
engine:
  circuit_threshold: 3
  probe_interval: 10s
"""

TOKEN = "trading-secret-token"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(autouse=True)
def _tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_TRADING_TOKEN", TOKEN)
    monkeypatch.setenv("TEST_TREASURY_SECRET", SECRET)
    monkeypatch.delenv("INTERLINK_DATABASE_URL", raising=False)
    monkeypatch.delenv("INTERLINK_CONFIG", raising=False)


@pytest.fixture
async def treasury() -> AsyncIterator[Receiver]:
    receiver = await Receiver().start()
    yield receiver
    await receiver.stop()


@pytest.fixture
async def finance() -> AsyncIterator[Receiver]:
    receiver = await Receiver().start()
    yield receiver
    await receiver.stop()


@pytest.fixture
def write_topology(tmp_path: Path) -> Callable[[str], Topology]:
    def write(text: str) -> Topology:
        path = tmp_path / "interlink.yaml"
        path.write_text(textwrap.dedent(text))
        return load(path)

    return write


@pytest.fixture
def topology(
    write_topology: Callable[[str], Topology], treasury: Receiver, finance: Receiver
) -> Topology:
    return write_topology(TOPOLOGY.format(treasury=treasury.url, finance=finance.url))


@pytest.fixture
async def hub(topology: Topology, clock: FakeClock) -> AsyncIterator[Hub]:
    h = Hub(topology, clock=clock, transport=HttpTransport())
    yield h
    await h.close()


@pytest.fixture
def output_dir(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A folder under test-output/ named for the test, for screenshots and reports."""
    root = Path(__file__).resolve().parent.parent / "test-output"
    path = root / request.node.name.replace("/", "_").replace("[", "_").replace("]", "")
    path.mkdir(parents=True, exist_ok=True)
    yield path
