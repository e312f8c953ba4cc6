"""DNS rebinding against a source's paged query API: a name that resolves to a public address
for the local-address check and to 127.0.0.1 a moment later must never be asked at 127.0.0.1.
The hub resolves once and connects to the checked address; over TLS the certificate is still
checked for (and SNI names) the host name, not the address."""

from __future__ import annotations

import http.server
import json
import socket
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
import trustme

from interlink.clock import FakeClock
from interlink.features.sources.outbox import Unreachable
from interlink.features.sources.query import QueryApi
from interlink.transports.pinned import pinned_open

HOST = "upstream.example.test"
PUBLIC = "203.0.113.7"  # TEST-NET-3: not local, never routed


class Local(http.server.BaseHTTPRequestHandler):
    asked: list[str] = []
    names: list[str | None] = []

    def do_GET(self) -> None:
        Local.asked.append(self.path)
        Local.names.append(self.headers.get("Host"))
        body = json.dumps({"items": [{"id": 1}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return None


def _serve(context: ssl.SSLContext | None = None) -> Iterator[int]:
    Local.asked, Local.names = [], []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Local)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def local_port() -> Iterator[int]:
    yield from _serve()


def _rebinding(monkeypatch: pytest.MonkeyPatch, answers: list[str]) -> list[tuple[str, int]]:
    """getaddrinfo answers ``answers`` in turn for HOST (the last one from then on); the
    addresses connected to are returned, a connection to PUBLIC refused at once."""
    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.create_connection
    calls = iter(answers)
    last = answers[-1]
    connected: list[tuple[str, int]] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != HOST:
            return real_getaddrinfo(host, port, *args, **kwargs)
        ip = next(calls, last)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port or 80))]

    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        host, port = address
        if host == HOST:  # a client resolving the name again
            host = str(socket.getaddrinfo(host, port)[0][4][0])
        connected.append((host, port))
        if host == PUBLIC:
            raise ConnectionRefusedError(111, "Connection refused")
        return real_connect((host, port), *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    return connected


def _api(port: int, allow_local: bool = False) -> QueryApi:
    endpoint = SimpleNamespace(
        url=f"http://{HOST}:{port}/items", size_param="size", page_size=10,
        cursor_param="after", until_param=None, token_env=None, allow_local=allow_local,
        items_path="items", cursor_path="id",
    )  # fmt: skip
    settings: Any = SimpleNamespace(
        endpoint=endpoint, document="payment_order", settle=timedelta(0)
    )
    return QueryApi(settings)


def test_a_name_rebound_to_loopback_after_the_check_is_never_asked(
    monkeypatch: pytest.MonkeyPatch, local_port: int, clock: FakeClock
) -> None:
    connected = _rebinding(monkeypatch, [PUBLIC, "127.0.0.1"])
    with pytest.raises(Unreachable, match="cannot reach"):
        _api(local_port).read(None, 5, clock.now())
    assert Local.asked == []
    assert connected == [(PUBLIC, local_port)]


def test_a_name_resolving_to_loopback_is_refused_before_connecting(
    monkeypatch: pytest.MonkeyPatch, local_port: int, clock: FakeClock
) -> None:
    connected = _rebinding(monkeypatch, ["127.0.0.1", PUBLIC])
    with pytest.raises(Unreachable, match=r"local address 127\.0\.0\.1"):
        _api(local_port).read(None, 5, clock.now())
    assert Local.asked == [] and connected == []


def test_the_checked_address_is_asked_with_the_host_name(
    monkeypatch: pytest.MonkeyPatch, local_port: int, clock: FakeClock
) -> None:
    # allow_local: the address is used as resolved, once; the Host header keeps the name.
    connected = _rebinding(monkeypatch, ["127.0.0.1", PUBLIC])
    rows, _, _ = _api(local_port, allow_local=True).read(None, 5, clock.now())
    assert len(rows) == 1
    assert connected == [("127.0.0.1", local_port)]
    assert Local.names == [f"{HOST}:{local_port}"]


def test_tls_checks_the_certificate_for_the_host_name_not_the_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(HOST).configure_cert(server_context)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    served = _serve(server_context)
    port = next(served)
    try:
        _rebinding(monkeypatch, ["127.0.0.1"])
        request = urllib.request.Request(f"https://{HOST}:{port}/items")
        with pinned_open(request, 10, allow_local=True, context=client) as response:
            assert json.loads(response.read()) == {"items": [{"id": 1}]}
        # The same server asked by its address: its certificate does not name 127.0.0.1.
        request = urllib.request.Request(f"https://127.0.0.1:{port}/items")
        with pytest.raises(urllib.error.URLError, match=r"certificate|match"):
            pinned_open(request, 10, allow_local=True, context=client)
    finally:
        next(served, None)
