"""Shared fixtures: a fake clock, real loopback receivers, and hubs on a fresh SQLite store."""

from __future__ import annotations

import os
import re
import textwrap
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from interlink.clock import FakeClock
from interlink.config import Topology, load
from interlink.features.registry import FEATURES
from interlink.service import Hub
from interlink.transports.base import Transport
from interlink.transports.http import HttpTransport
from interlink.transports.reqwest import ReqwestTransport
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
# The break-glass admin token (INTERLINK_ADMIN_TOKEN) every test's environment has: the API
# answers management calls only to a person's token or this one.
ADMIN_TOKEN = "admin-secret-token"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


PG_ENV = "INTERLINK_TEST_PG"
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
STORES_ENV = "INTERLINK_TEST_STORES"


def _stores() -> list[str]:
    return [
        s.strip() for s in os.environ.get(STORES_ENV, "sqlite,postgresql").split(",") if s.strip()
    ]


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated template database; each test clones it (CREATE DATABASE ... TEMPLATE)."""
    import psycopg

    from interlink.store.db import open_store

    base = os.environ.get(PG_ENV, PG_DEFAULT)
    try:
        admin = psycopg.connect(base, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {base} is required under CI: {exc}")
        pytest.skip(f"PostgreSQL at {base} is not reachable ({exc}); set {PG_ENV}")
    name = f"interlink_tpl_{os.getpid()}"
    # No connection is kept open across the session: the chaos test restarts the server.
    with admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    store = open_store(_pg_url(base, name))
    store.close()
    try:
        yield name
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _pg_url(base: str, database: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(base).set(database=database).render_as_string(hide_password=False)


@pytest.fixture(params=_stores())
def database(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Which store the hub runs on: SQLite (the file in the topology) or a fresh PostgreSQL
    database cloned from the template, selected with INTERLINK_DATABASE_URL."""
    if request.param == "sqlite":
        yield "sqlite"
        return
    import psycopg

    template = request.getfixturevalue("pg_template")
    base = os.environ.get(PG_ENV, PG_DEFAULT)
    name = f"interlink_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as admin:
        # WAL_LOG (the default) rather than FILE_COPY: FILE_COPY checkpoints before copying,
        # and each checkpoint waits on the disk's flushes. Measured on a 2-core machine of this
        # project: 1.6-2.4 s to clone and 0.7-1.1 s to drop with FILE_COPY, 0.6-1.0 s and
        # 0.1-0.4 s with WAL_LOG (the drop has fewer dirty buffers to write).
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY WAL_LOG')
    monkeypatch.setenv("INTERLINK_DATABASE_URL", _pg_url(base, name))
    try:
        yield "postgresql"
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(autouse=True)
def _tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_TRADING_TOKEN", TOKEN)
    monkeypatch.setenv("INTERLINK_ADMIN_TOKEN", ADMIN_TOKEN)
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


# Every HTTP client a delivery can go out on (INTERLINK_HTTP_CLIENT), by test id. A module
# whose cases must hold on each one overrides ``make_transport`` with a fixture over these.
HTTP_CLIENTS: dict[str, Callable[[], Transport]] = {
    "aiohttp": HttpTransport,
    "reqwest": ReqwestTransport,
}


@pytest.fixture
def make_transport() -> Callable[[], Transport]:
    """What ``hub`` and ``make_hub`` deliver with."""
    return HttpTransport


@pytest.fixture
async def hub(
    topology: Topology, clock: FakeClock, database: str, make_transport: Callable[[], Transport]
) -> AsyncIterator[Hub]:
    h = Hub(topology, clock=clock, transport=make_transport(), features=FEATURES)
    yield h
    await h.close()


@pytest.fixture
def output_dir(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A folder under test-output/ named for the test, for screenshots and reports."""
    root = Path(__file__).resolve().parent.parent / "test-output"
    path = root / request.node.name.replace("/", "_").replace("[", "_").replace("]", "")
    path.mkdir(parents=True, exist_ok=True)
    yield path


# What `Api.request` sends when no token is named: the trading system's token where a system
# calls (intake, and the reads of its own documents and deliveries), the admin token elsewhere.
AUTO = "auto"
SYSTEM_CALLS = re.compile(r"/api/v1/(documents|deliveries)(/[^/]*)?(\?.*)?")


def default_token(method: str, path: str) -> str:
    if method.upper() == "POST":
        return TOKEN if path.split("?")[0] == "/api/v1/documents" else ADMIN_TOKEN
    return TOKEN if method.upper() == "GET" and SYSTEM_CALLS.fullmatch(path) else ADMIN_TOKEN


class Api:
    """A real uvicorn server on loopback serving the app, and a client session for it.

    ``insecure`` serves as ``interlink serve --insecure`` does: management calls need no token.
    """

    def __init__(self, hub: Hub, workers: bool = False, insecure: bool = False) -> None:
        import aiohttp

        from interlink.web.api import create_app

        self.hub = hub
        self.app = create_app(hub, workers=workers, insecure=insecure)
        self._aiohttp = aiohttp
        self.session: aiohttp.ClientSession | None = None

    async def start(self) -> Api:
        import asyncio
        import socket

        import uvicorn

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.task = asyncio.create_task(self.server.serve(sockets=[sock]))
        self._sock = sock
        while not self.server.started:
            await asyncio.sleep(0.01)  # waiting for the listener to come up, not for a retry
        self.session = self._aiohttp.ClientSession()
        return self

    async def stop(self) -> None:
        if self.session is not None:
            await self.session.close()
        self.server.should_exit = True
        await self.task
        self._sock.close()

    async def request(
        self, method: str, path: str, *, token: str | None = AUTO, **kwargs: object
    ) -> tuple[int, object, dict[str, str]]:
        assert self.session is not None
        headers = dict(kwargs.pop("headers", {}) or {})  # type: ignore[call-overload]
        if token == AUTO:
            token = default_token(method, path)
        # State-changing calls say application/json, with or without a body (the API refuses
        # anything a cross-site form could send); a test may name another type, or send a form.
        if (
            method.upper() in ("POST", "PUT", "PATCH", "DELETE")
            and not isinstance(kwargs.get("data"), self._aiohttp.FormData)
            and not any(name.lower() == "content-type" for name in headers)
        ):
            headers["Content-Type"] = "application/json"
        if token is not None:
            headers.setdefault("Authorization", f"Bearer {token}")
        async with self.session.request(
            method, self.url + path, headers=headers, **kwargs
        ) as response:
            text = await response.text()
            try:
                body: object = (await response.json(content_type=None)) if text else None
            except ValueError:
                body = text
            return response.status, body, dict(response.headers)


@pytest.fixture
async def api(hub: Hub) -> AsyncIterator[Api]:
    server = await Api(hub).start()
    yield server
    await server.stop()


# -- end-to-end helpers for the delivery engine tests (appended) --------------------------------

from interlink.intake import Item  # noqa: E402
from interlink.model import Delivery  # noqa: E402
from tests.receiver import Received  # noqa: E402

TREASURY_FLOW = "trading-treasury"
FINANCE_FLOW = "trading-finance"


@pytest.fixture
async def make_hub(
    write_topology: Callable[[str], Topology],
    treasury: Receiver,
    finance: Receiver,
    clock: FakeClock,
    database: str,
    make_transport: Callable[[], Transport],
) -> AsyncIterator[Callable[[str], Hub]]:
    """A hub over a topology of the test's own, ``{treasury}``/``{finance}`` filled in.

    Use instead of ``hub`` (not beside it: both would share one database file).
    """
    made: list[Hub] = []

    def make(text: str = TOPOLOGY) -> Hub:
        topology = write_topology(text.format(treasury=treasury.url, finance=finance.url))
        h = Hub(topology, clock=clock, transport=make_transport(), features=FEATURES)
        made.append(h)
        return h

    yield make
    for h in made:
        await h.close()


def pay(order_no: str, amount: str = "10.00", kind: str = "pay", **extra: object) -> dict:
    """A payment_order payload."""
    return {"order_no": order_no, "amount": amount, "kind": kind, **extra}


async def submit(hub: Hub, *payloads: dict, idempotency_key: str | None = None) -> list[dict]:
    """Submit payment orders from trading, one item each, and insist every one was accepted."""
    results = await hub.intake.submit(
        hub.topology.systems["trading"],
        [Item("payment_order", p, idempotency_key) for p in payloads],
    )
    for r in results:
        assert isinstance(r, dict), r
    return results  # type: ignore[return-value]


def delivery_of(hub: Hub, document_id: str, flow: str = TREASURY_FLOW) -> Delivery:
    """The document's delivery on ``flow``, with its attempt log."""
    [found] = [d for d in hub.document(document_id).deliveries if d.flow == flow]
    return found


def header(received: Received, name: str) -> str | None:
    """A request header as the receiver saw it, by case-insensitive name."""
    for key, value in received.headers.items():
        if key.lower() == name.lower():
            return value
    return None
