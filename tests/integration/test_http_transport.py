"""Both HTTP transports against real sockets: every case runs on aiohttp and on reqwest."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import (
    ClientConnectorDNSError,
    ClientConnectorError,
    ClientError,
    ClientOSError,
    ClientPayloadError,
    InvalidURL,
    ServerDisconnectedError,
    ServerTimeoutError,
    web,
)
from aiohttp.client_reqrep import ConnectionKey

from interlink.engine.outcome import Outcome, classify_error, classify_response
from interlink.errors import ConfigError, TransportError
from interlink.transports import default_transport
from interlink.transports.base import MAX_RESPONSE_BODY, Request, Transport
from interlink.transports.http import HttpTransport, _kind
from interlink.transports.reqwest import ReqwestTransport
from tests.conftest import HTTP_CLIENTS
from tests.receiver import Received, Receiver

BODY = b'{"order_no":"SO-1"}'
NOW = datetime(2026, 1, 1, tzinfo=UTC)
KEY = ConnectionKey("erp.example", 443, True, True, None, None, None)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    running = await Receiver().start()
    yield running
    await running.stop()


@pytest.fixture(params=list(HTTP_CLIENTS))
def make(request: pytest.FixtureRequest) -> Callable[[], Transport]:
    return HTTP_CLIENTS[request.param]


@pytest.fixture
async def transport(make: Callable[[], Transport]) -> AsyncIterator[Transport]:
    http = make()
    yield http
    await http.close()


def post(url: str, timeout: float = 2.0, headers: dict[str, str] | None = None) -> Request:
    return Request(url=url, body=BODY, headers=headers or {}, timeout=timeout)


async def test_delivers_body_and_headers(receiver: Receiver, transport: Transport) -> None:
    receiver.respond(201, '{"id": 7}', headers={"X-Receipt": "r-1"})
    response = await transport.send(
        post(f"{receiver.url}/orders", headers={"Idempotency-Key": "doc-1", "Interlink-Key": "k"})
    )
    assert response.status == 201
    assert response.body == b'{"id": 7}'
    assert response.headers["x-receipt"] == "r-1"
    assert response.elapsed_ms > 0
    [received] = receiver.requests
    assert received.path == "/orders"
    assert received.body == BODY
    assert received.json == {"order_no": "SO-1"}
    assert received.headers["Content-Type"] == "application/json"
    assert received.headers["Interlink-Key"] == "k"
    assert receiver.keys() == ["doc-1"]


async def test_response_body_is_cut_at_4096_bytes(receiver: Receiver, transport: Transport) -> None:
    receiver.respond(200, b"a" * 4000 + b"b" * 200_000)
    response = await transport.send(post(receiver.url))
    assert len(response.body) == 4096
    assert response.body == b"a" * 4000 + b"b" * 96


async def test_error_statuses_are_answers_not_errors(
    receiver: Receiver, transport: Transport
) -> None:
    receiver.respond(503, "down", times=1)
    assert (await transport.send(post(receiver.url))).status == 503
    assert (await transport.send(post(receiver.url))).status == 200


async def test_connection_refused(transport: Transport) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TransportError) as caught:
        await transport.send(post(f"http://127.0.0.1:{port}/"))
    assert caught.value.kind == "refused"
    assert classify_error(caught.value).outcome is Outcome.UNAVAILABLE


async def pooled_connections_dropped(port: int) -> None:
    """Wait until no connection to ``port`` on loopback is left half-closed (CLOSE_WAIT).

    The receiver closed them; a client drops a pooled connection once it reads that close.
    aiohttp reads it in our loop, reqwest on its own I/O thread at a moment the loop cannot
    see, so the test waits for the kernel to say both have, rather than for a time.
    """
    remote = f"0100007F:{port:04X}"
    for _ in range(500):
        table = Path("/proc/net/tcp").read_text().splitlines()[1:]
        if not any(row.split()[2] == remote and row.split()[3] == "08" for row in table):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the client kept its connection to port {port} open")


async def test_refuse_then_accept_on_same_port(receiver: Receiver, transport: Transport) -> None:
    await transport.send(post(receiver.url))
    await receiver.refuse()
    await pooled_connections_dropped(int(receiver.url.rpartition(":")[2]))
    with pytest.raises(TransportError) as caught:
        await transport.send(post(receiver.url))
    assert caught.value.kind == "refused"
    await receiver.accept()
    assert (await transport.send(post(receiver.url))).status == 200


async def test_timeout(receiver: Receiver, transport: Transport) -> None:
    receiver.hang(2.0)
    with pytest.raises(TransportError) as caught:
        await transport.send(post(receiver.url, timeout=0.2))
    assert caught.value.kind == "timeout"
    assert classify_error(caught.value).outcome is Outcome.UNAVAILABLE


async def test_garbage_reply(receiver: Receiver, transport: Transport) -> None:
    receiver.garbage(times=1)
    with pytest.raises(TransportError) as caught:
        await transport.send(post(receiver.url))
    assert caught.value.kind in {"protocol", "reset"}
    assert classify_error(caught.value).outcome is Outcome.UNAVAILABLE
    # The broken connection is not reused.
    assert (await transport.send(post(receiver.url))).status == 200


async def test_server_closes_mid_response(receiver: Receiver, transport: Transport) -> None:
    receiver.cut_off(times=1)
    with pytest.raises(TransportError) as caught:
        await transport.send(post(receiver.url))
    assert caught.value.kind in {"protocol", "reset"}
    assert classify_error(caught.value).outcome is Outcome.UNAVAILABLE


async def test_custom_handler(receiver: Receiver, transport: Transport) -> None:
    async def echo(received: Received) -> web.StreamResponse:
        return web.Response(status=202, body=received.body)

    receiver.respond_with(echo)
    response = await transport.send(post(receiver.url))
    assert (response.status, response.body) == (202, BODY)
    receiver.respond_with(lambda received: web.Response(status=409))
    assert (await transport.send(post(receiver.url))).status == 409


async def test_invalid_url_is_local(transport: Transport) -> None:
    # A URL that cannot be used is our failure, not the downstream's (issue 11).
    with pytest.raises(TransportError) as caught:
        await transport.send(post("not a url"))
    assert caught.value.kind == "local"


async def test_hang_for_one_request(receiver: Receiver, transport: Transport) -> None:
    receiver.hang(2.0, times=1)
    with pytest.raises(TransportError) as caught:
        await transport.send(post(receiver.url, timeout=0.1))
    assert caught.value.kind == "timeout"
    assert "0.1s" in caught.value.message
    # The scripted hang was for one request only.
    assert (await transport.send(post(receiver.url))).status == 200


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (ClientConnectorDNSError(KEY, OSError(-2, "Name or service not known")), "dns"),
        (ClientConnectorError(KEY, ConnectionRefusedError(111, "refused")), "refused"),
        (ConnectionRefusedError(), "refused"),
        (ServerDisconnectedError(), "reset"),
        (ClientOSError(104, "reset"), "reset"),
        (ConnectionResetError(), "reset"),
        (ServerTimeoutError(), "timeout"),
        (TimeoutError(), "timeout"),
        (ClientPayloadError("short"), "protocol"),
        (InvalidURL("nope"), "protocol"),
        (ClientError("odd"), "protocol"),
        (ValueError("foreign"), "protocol"),
    ],
)
def test_exception_kinds(error: Exception, kind: str) -> None:
    assert _kind(error) == kind


async def test_close_is_idempotent_and_session_recreated(
    receiver: Receiver, make: Callable[[], Transport]
) -> None:
    http = make()
    await http.close()
    assert (await http.send(post(receiver.url))).status == 200
    await http.close()
    await http.close()
    assert (await http.send(post(receiver.url))).status == 200
    await http.close()
    await asyncio.sleep(0)


# -- on the wire: what a receiver that misbehaves below HTTP does to each client -----------------

Conversation = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def raw_server(conversation: Conversation) -> AsyncIterator[str]:
    """A TCP server on loopback that holds ``conversation`` with each client; yields its URL."""
    handlers: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            with contextlib.suppress(ConnectionError):
                await conversation(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"
    finally:
        server.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """The request's head; its body is read and dropped."""
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            await reader.readexactly(int(value))
    return head


def answer(status_line: bytes, *headers: bytes, body: bytes = b"") -> bytes:
    lines = [status_line, *headers, b"Content-Length: %d" % len(body)]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


async def test_endless_body_is_read_only_to_the_cap(transport: Transport) -> None:
    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"400\r\n" + b"z" * 1024 + b"\r\n"
        while True:  # until the client hangs up
            writer.write(chunk)
            await writer.drain()

    async with raw_server(endless) as url:
        # Read whole, the answer would run into the timeout and be a TransportError.
        response = await transport.send(post(url, timeout=5.0))
    assert response.status == 200
    assert response.body == b"z" * MAX_RESPONSE_BODY


async def test_body_that_trickles_past_the_timeout_times_out(transport: Transport) -> None:
    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        while True:
            writer.write(b".")
            await writer.drain()
            await asyncio.sleep(0.05)

    async with raw_server(trickle) as url:
        with pytest.raises(TransportError) as caught:
            await transport.send(post(url, timeout=0.3))
    assert caught.value.kind == "timeout"
    assert caught.value.message.endswith(": no answer within 0.3s")


async def test_content_type_is_sent_once_and_is_json(transport: Transport) -> None:
    heads: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await read_request(reader))
        writer.write(answer(b"HTTP/1.1 204 No Content"))
        await writer.drain()

    async with raw_server(record) as url:
        headers = {"content-type": "text/plain", "CONTENT-TYPE": "text/xml", "X-Other": "1"}
        assert (await transport.send(post(url, headers=headers))).status == 204
    [head] = heads
    lines = [line.lower() for line in head.split(b"\r\n")]
    assert [line for line in lines if line.startswith(b"content-type:")] == [
        b"content-type: application/json"
    ]
    assert b"x-other: 1" in lines


async def test_connection_closed_without_an_answer_is_reset(transport: Transport) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    async with raw_server(hang_up) as url:
        with pytest.raises(TransportError) as caught:
            await transport.send(post(url))
    assert caught.value.kind == "reset"
    assert classify_error(caught.value).outcome is Outcome.UNAVAILABLE


async def test_connection_reset_by_peer_is_reset(transport: Transport) -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        sock = writer.get_extra_info("socket")
        # Linger 0: close sends RST, not FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async with raw_server(reset) as url:
        with pytest.raises(TransportError) as caught:
            await transport.send(post(url))
    assert caught.value.kind == "reset"
    assert "\n" not in caught.value.message


async def test_tls_to_a_plain_http_port_is_protocol(
    receiver: Receiver, transport: Transport
) -> None:
    url = receiver.url.replace("http://", "https://")
    with pytest.raises(TransportError) as caught:
        await transport.send(post(url))
    assert caught.value.kind == "protocol"
    assert receiver.requests == []


async def test_unknown_host_is_dns(transport: Transport) -> None:
    # .invalid never resolves (RFC 6761).
    with pytest.raises(TransportError) as caught:
        await transport.send(post("http://interlink-test.invalid/hook", timeout=10.0))
    assert caught.value.kind == "dns"
    assert caught.value.message.startswith("POST http://interlink-test.invalid/hook: ")


# -- what the classifier reads ------------------------------------------------------------------


async def test_redirect_is_an_answer_not_followed(receiver: Receiver, transport: Transport) -> None:
    receiver.respond(302, "moved", headers={"Location": "/elsewhere"})
    response = await transport.send(post(f"{receiver.url}/orders"))
    assert (response.status, response.body) == (302, b"moved")
    assert response.headers["location"] == "/elsewhere"
    assert [r.path for r in receiver.requests] == ["/orders"]


async def test_response_headers_are_case_insensitive(
    receiver: Receiver, transport: Transport
) -> None:
    receiver.respond(429, "slow down", headers={"Retry-After": "7", "X-Receipt": "r-1"})
    response = await transport.send(post(receiver.url))
    assert response.headers["retry-after"] == response.headers["RETRY-AFTER"] == "7"
    assert "x-receipt" in response.headers
    assert response.headers.get("X-Missing") is None
    classified = classify_response(response.status, response.headers, response.body, NOW)
    assert (classified.outcome, classified.retry_after) == (Outcome.THROTTLED, 7.0)


async def test_header_values_that_are_not_text_still_classify(transport: Transport) -> None:
    async def odd(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"HTTP/1.1 429 Too Many", b"Retry-After: \xff\xfe", b"X-Name: caf\xe9"))
        await writer.drain()

    async with raw_server(odd) as url:
        response = await transport.send(post(url))
    assert response.status == 429
    assert all(isinstance(value, str) for value in response.headers.values())
    classified = classify_response(response.status, response.headers, response.body, NOW)
    assert (classified.outcome, classified.retry_after) == (Outcome.THROTTLED, None)


# -- requests that cannot be built: refused here, the same on both clients ------------------------

# Each URL, if sent, would reach the test's receiver ({port}) or fail as the downstream's fault.
UNBUILDABLE: dict[str, tuple[str, dict[str, str]]] = {
    "not a URL": ("not a url", {}),
    "not http": ("ftp://127.0.0.1:{port}/file", {}),
    "no host": ("http:///path", {}),
    "space in host": ("http://exa mple.invalid/", {}),
    "escape in host": ("http://exa%20mple.invalid/", {}),
    "bracket in host": ("http://a<b.invalid/", {}),
    "empty label": ("http://a..b.invalid/", {}),
    "label over 63": ("http://" + "a" * 64 + ".invalid/", {}),
    "bad punycode": ("http://xn--.invalid/", {}),
    "short IPv4": ("http://127.1:{port}/", {}),
    "hex IPv4": ("http://0x7f.0.0.1:{port}/", {}),
    "leading zero IPv4": ("http://127.0.0.01:{port}/", {}),
    "CRLF in value": ("", {"X-Note": "a\r\nX-Injected: 1"}),
    "LF in value": ("", {"X-Note": "a\nb"}),
    "NUL in value": ("", {"X-Note": "a\x00b"}),
    "space in name": ("", {"X Note": "v"}),
    "CRLF in name": ("", {"X-A\r\nX-B": "v"}),
    "empty name": ("", {"": "v"}),
    "lone surrogate": ("", {"X-Note": "\ud800"}),
}


@pytest.mark.parametrize("case", list(UNBUILDABLE))
async def test_unbuildable_request_is_local_and_never_sent(
    case: str, receiver: Receiver, transport: Transport
) -> None:
    url, headers = UNBUILDABLE[case]
    with pytest.raises(TransportError) as caught:
        port = receiver.url.rpartition(":")[2]
        await transport.send(post(url.format(port=port) or receiver.url, headers=headers))
    assert caught.value.kind == "local"
    assert caught.value.message.startswith("POST ")
    assert "\n" not in caught.value.message and "\r" not in caught.value.message
    assert classify_error(caught.value).outcome is Outcome.LOCAL_ERROR
    assert receiver.requests == []


async def test_non_ascii_header_value_goes_out_as_utf8(
    receiver: Receiver, transport: Transport
) -> None:
    await transport.send(post(receiver.url, headers={"Interlink-Key": "café-北京"}))
    [received] = receiver.requests
    assert received.headers["Interlink-Key"] == "café-北京"


# -- choosing the client ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "chosen"),
    [
        (None, ReqwestTransport),
        ("", ReqwestTransport),
        ("reqwest", ReqwestTransport),
        (" AIOHTTP ", HttpTransport),
        ("aiohttp", HttpTransport),
    ],
)
def test_default_transport_follows_the_environment(
    value: str | None, chosen: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    if value is None:
        monkeypatch.delenv("INTERLINK_HTTP_CLIENT", raising=False)
    else:
        monkeypatch.setenv("INTERLINK_HTTP_CLIENT", value)
    assert type(default_transport()) is chosen


def test_unknown_client_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERLINK_HTTP_CLIENT", "curl")
    with pytest.raises(ConfigError) as caught:
        default_transport()
    assert caught.value.problems == [
        "INTERLINK_HTTP_CLIENT='curl': expected one of reqwest, aiohttp"
    ]
