"""Mutual TLS, CA bundles and pins, on both HTTP transports, against a real TLS server.

The server (a thread on 127.0.0.1) requires a client certificate signed by its own client CA;
every certificate is made here with trustme. It answers in a thread rather than in the test's
event loop so that a refused handshake sends its TLS alert the way a production server does.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme

from interlink.clock import FakeClock
from interlink.config import Topology
from interlink.engine.outcome import Outcome, classify_error
from interlink.errors import ConfigError, TransportError
from interlink.features.registry import FEATURES
from interlink.service import Hub
from interlink.transports.base import Request, Transport
from interlink.transports.tls import TlsProfile, parse_pin, pin_text
from tests.conftest import HTTP_CLIENTS, delivery_of, submit

BODY = b'{"order_no":"SO-1"}'


@dataclass
class Peer:
    """The TLS server, what it saw, and the certificates of both sides."""

    url: str
    server_ca: trustme.CA
    client: trustme.LeafCert
    server_der: bytes
    paths: list[str] = field(default_factory=list)

    @property
    def client_cert(self) -> bytes:
        return b"".join(blob.bytes() for blob in self.client.cert_chain_pems)

    @property
    def client_key(self) -> bytes:
        return self.client.private_key_pem.bytes()


@pytest.fixture(scope="module")
def peer() -> Iterator[Peer]:
    server_ca, client_ca = trustme.CA(), trustme.CA()
    server = server_ca.issue_cert("127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.configure_cert(context)
    client_ca.configure_trust(context)
    context.verify_mode = ssl.CERT_REQUIRED
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            seen.append(self.path)
            self.send_response(201)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: object, client_address: object) -> None:
            pass  # a refused handshake is what half the tests are about

    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    der = ssl.PEM_cert_to_DER_cert(server.cert_chain_pems[0].bytes().decode())
    found = Peer(
        f"https://127.0.0.1:{httpd.server_address[1]}",
        server_ca,
        client_ca.issue_cert("interlink.client.example"),
        der,
        seen,
    )
    try:
        yield found
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(params=list(HTTP_CLIENTS))
def make_transport(request: pytest.FixtureRequest) -> Callable[[], Transport]:
    """Every case on every HTTP client."""
    return HTTP_CLIENTS[request.param]


@pytest.fixture
async def transport(make_transport: Callable[[], Transport]) -> AsyncIterator[Transport]:
    made = make_transport()
    yield made
    await made.close()


def post(peer: Peer, profile: TlsProfile | None, path: str = "/pay") -> Request:
    return Request(url=peer.url + path, body=BODY, headers={}, timeout=5.0, tls=profile)


def full(peer: Peer, **changes: object) -> TlsProfile:
    """The right CA and client certificate, with ``changes``."""
    values: dict[str, object] = {
        "name": "bank",
        "ca_pem": peer.server_ca.cert_pem.bytes(),
        "cert_pem": peer.client_cert,
        "key_pem": peer.client_key,
    }
    return TlsProfile(**{**values, **changes})  # type: ignore[arg-type]


async def refused(transport: Transport, request: Request) -> TransportError:
    with pytest.raises(TransportError) as caught:
        await transport.send(request)
    assert classify_error(caught.value).outcome is Outcome.UNAVAILABLE
    return caught.value


async def test_the_right_client_certificate_is_delivered(peer: Peer, transport: Transport) -> None:
    response = await transport.send(post(peer, full(peer), "/with-cert"))
    assert (response.status, response.body) == (201, b"ok")
    assert "/with-cert" in peer.paths


async def test_without_a_client_certificate_the_server_refuses(
    peer: Peer, transport: Transport
) -> None:
    error = await refused(transport, post(peer, full(peer, cert_pem=None, key_pem=None), "/no"))
    assert error.kind == "tls"
    assert "/no" not in peer.paths


async def test_a_server_from_an_unknown_ca_is_refused(peer: Peer, transport: Transport) -> None:
    # Neither the system's roots nor another CA vouch for the server: refused before sending.
    other = trustme.CA().cert_pem.bytes()
    for profile in (None, full(peer, ca_pem=other)):
        error = await refused(transport, post(peer, profile, "/unknown-ca"))
        assert error.kind == "tls"
    assert "/unknown-ca" not in peer.paths


async def test_a_matching_pin_is_delivered(peer: Peer, transport: Transport) -> None:
    pins = frozenset({parse_pin(pin_text(peer.server_der)), bytes(32)})  # current and next
    response = await transport.send(post(peer, full(peer, pins=pins), "/pinned"))
    assert response.status == 201
    assert "/pinned" in peer.paths


async def test_a_pin_mismatch_is_a_tls_failure_and_nothing_is_sent(
    peer: Peer, transport: Transport
) -> None:
    # The certificate is valid (right CA, right name): only the pin refuses it.
    error = await refused(transport, post(peer, full(peer, pins=frozenset({bytes(32)})), "/mitm"))
    assert error.kind == "tls"
    assert "pinned" in error.message
    assert pin_text(peer.server_der) in error.message  # what to pin, if the change is wanted
    assert "/mitm" not in peer.paths


async def test_a_key_that_cannot_be_used_is_ours(peer: Peer, transport: Transport) -> None:
    broken = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    with pytest.raises(TransportError) as caught:
        await transport.send(post(peer, full(peer, key_pem=broken), "/broken"))
    assert caught.value.kind == "local"
    assert "TLS settings of system bank" in caught.value.message


# -- from the topology, through the engine --------------------------------------------------------

TOPOLOGY = """\
database: sqlite:///hub.db
systems:
  trading:
    token_env: TEST_TRADING_TOKEN
  bank:
    url: {url}
    tls:
      ca_file: certs/bank-ca.pem
      cert_file: certs/client.pem
      key_env: TEST_BANK_CLIENT_KEY
      pins: [{pin}]
documents:
  payment_order:
    key: order_no
flows:
  trading-bank:
    from: trading
    to: bank
    document: payment_order
    path: /engine
    retry: [5s]
    give_up_after: 1h
"""


@pytest.fixture
def bank_files(peer: Peer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "bank-ca.pem").write_bytes(peer.server_ca.cert_pem.bytes())
    (tmp_path / "certs" / "client.pem").write_bytes(peer.client_cert)
    monkeypatch.setenv("TEST_BANK_CLIENT_KEY", peer.client_key.decode())


@pytest.mark.parametrize("pinned", [True, False], ids=["pin-matches", "pin-differs"])
@pytest.mark.usefixtures("bank_files")
async def test_the_engine_delivers_with_the_systems_tls(
    peer: Peer,
    write_topology: Callable[[str], Topology],
    make_transport: Callable[[], Transport],
    clock: FakeClock,
    pinned: bool,
) -> None:
    pin = pin_text(peer.server_der) if pinned else "sha256/" + "A" * 43 + "="
    topology = write_topology(TOPOLOGY.format(url=peer.url, pin=pin))
    hub = Hub(topology, clock=clock, transport=make_transport(), features=FEATURES)
    try:
        [doc] = await submit(hub, {"order_no": "T1"})
        await hub.engine.drain()
        d = delivery_of(hub, doc["id"], "trading-bank")
    finally:
        await hub.close()
    if pinned:
        assert d.status == "delivered"
    else:
        assert (d.status, d.attempts) == ("pending", 1)  # unavailable: retried on schedule
        assert "pinned" in (d.last_error or "")


def test_a_missing_certificate_file_is_named_with_its_line(
    write_topology: Callable[[str], Topology], tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as caught:
        write_topology(TOPOLOGY.format(url="https://bank.example", pin="sha256/x"))
    problems = "\n".join(caught.value.problems)
    assert (
        "interlink.yaml:8: systems.bank.tls.ca_file: file certs/bank-ca.pem not found" in problems
    )
    assert "interlink.yaml:11: systems.bank.tls.pins: 'sha256/x' is not a pin" in problems


def test_the_pin_holds_on_uvloop(peer: Peer) -> None:
    """serve runs on uvloop (runner.py), whose TLS goes through the same SSLObject hook."""
    uvloop = pytest.importorskip("uvloop")
    from interlink.transports.http import HttpTransport

    async def send(pins: frozenset[bytes]) -> int | str:
        transport = HttpTransport()
        try:
            response = await transport.send(post(peer, full(peer, pins=pins), "/uvloop"))
            return response.status
        except TransportError as error:
            return error.kind
        finally:
            await transport.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(send(frozenset({bytes(32)}))) == "tls"
        assert "/uvloop" not in peer.paths
        assert runner.run(send(frozenset({parse_pin(pin_text(peer.server_der))}))) == 201
