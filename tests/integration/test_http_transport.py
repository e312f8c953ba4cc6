from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

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

from interlink.engine.outcome import Outcome, classify_error
from interlink.errors import TransportError
from interlink.transports.base import Request
from interlink.transports.http import HttpTransport, _kind
from tests.receiver import Received, Receiver

BODY = b'{"order_no":"SO-1"}'
KEY = ConnectionKey("erp.example", 443, True, True, None, None, None)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    running = await Receiver().start()
    yield running
    await running.stop()


@pytest.fixture
async def transport() -> AsyncIterator[HttpTransport]:
    http = HttpTransport(limit=8)
    yield http
    await http.close()


def post(url: str, timeout: float = 2.0, headers: dict[str, str] | None = None) -> Request:
    return Request(url=url, body=BODY, headers=headers or {}, timeout=timeout)


async def test_delivers_body_and_headers(receiver: Receiver, transport: HttpTransport) -> None:
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


async def test_response_body_is_cut_at_4096_bytes(
    receiver: Receiver, transport: HttpTransport
) -> None:
    receiver.respond(200, b"a" * 4000 + b"b" * 200_000)
    response = await transport.send(post(receiver.url))
    assert len(response.body) == 4096
    assert response.body == b"a" * 4000 + b"b" * 96


async def test_error_statuses_are_answers_not_errors(
    receiver: Receiver, transport: HttpTransport
) -> None:
    receiver.respond(503, "down", times=1)
    assert (await transport.send(post(receiver.url))).status == 503
    assert (await transport.send(post(receiver.url))).status == 200


async def test_connection_refused(transport: HttpTransport) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TransportError) as caught:
        await transport.send(post(f"http://127.0.0.1:{port}/"))
    assert caught.value.kind == "refused"
    assert classify_error(caught.value).outcome is Outcome.UNAVAILABLE


async def test_refuse_then_accept_on_same_port(
    receiver: Receiver, transport: HttpTransport
) -> None:
    await transport.send(post(receiver.url))
    await receiver.refuse()
    with pytest.raises(TransportError) as caught:
        await transport.send(post(receiver.url))
    assert caught.value.kind == "refused"
    await receiver.accept()
    assert (await transport.send(post(receiver.url))).status == 200


async def test_timeout(receiver: Receiver, transport: HttpTransport) -> None:
    receiver.hang(2.0)
    with pytest.raises(TransportError) as caught:
        await transport.send(post(receiver.url, timeout=0.2))
    assert caught.value.kind == "timeout"
    assert classify_error(caught.value).outcome is Outcome.UNAVAILABLE


async def test_garbage_reply(receiver: Receiver, transport: HttpTransport) -> None:
    receiver.garbage(times=1)
    with pytest.raises(TransportError) as caught:
        await transport.send(post(receiver.url))
    assert caught.value.kind in {"protocol", "reset"}
    assert classify_error(caught.value).outcome is Outcome.UNAVAILABLE
    # The broken connection is not reused.
    assert (await transport.send(post(receiver.url))).status == 200


async def test_server_closes_mid_response(receiver: Receiver, transport: HttpTransport) -> None:
    receiver.cut_off(times=1)
    with pytest.raises(TransportError) as caught:
        await transport.send(post(receiver.url))
    assert caught.value.kind in {"protocol", "reset"}
    assert classify_error(caught.value).outcome is Outcome.UNAVAILABLE


async def test_custom_handler(receiver: Receiver, transport: HttpTransport) -> None:
    async def echo(received: Received) -> web.StreamResponse:
        return web.Response(status=202, body=received.body)

    receiver.respond_with(echo)
    response = await transport.send(post(receiver.url))
    assert (response.status, response.body) == (202, BODY)
    receiver.respond_with(lambda received: web.Response(status=409))
    assert (await transport.send(post(receiver.url))).status == 409


async def test_invalid_url_is_local(transport: HttpTransport) -> None:
    # A URL that cannot be used is our failure, not the downstream's (issue 11).
    with pytest.raises(TransportError) as caught:
        await transport.send(post("not a url"))
    assert caught.value.kind == "local"


async def test_hang_for_one_request(receiver: Receiver, transport: HttpTransport) -> None:
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


async def test_close_is_idempotent_and_session_recreated(receiver: Receiver) -> None:
    http = HttpTransport()
    await http.close()
    assert (await http.send(post(receiver.url))).status == 200
    await http.close()
    await http.close()
    assert (await http.send(post(receiver.url))).status == 200
    await http.close()
    await asyncio.sleep(0)
