"""A real HTTP receiver on loopback for tests: records every request, answers from a script."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

Handler = Callable[["Received"], Awaitable[web.StreamResponse] | web.StreamResponse]
# An answer also gets the raw request, for answers that misbehave on the wire.
_Answer = Callable[["Received", web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any
    at: float
    """time.monotonic() when the request arrived."""


@dataclass
class _Scripted:
    answer: _Answer
    remaining: int


class Receiver:
    """Records every request; answers according to a script."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._permanent: _Answer = _static(200, b'{"ok":true}', None)
        self._queue: list[_Scripted] = []
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._port = 0
        self._stopping = asyncio.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    async def start(self) -> Receiver:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # handler_cancellation: a client that gives up (timeout) ends our hanging handler too,
        # so stop() never waits for a sleep nobody is listening to.
        self._runner = web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None
        )
        await self._runner.setup()
        await self.accept()
        return self

    async def stop(self) -> None:
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._site = None

    async def refuse(self) -> None:
        """Stop listening and drop open connections: new requests get connection refused."""
        if self._site is not None:
            await self._site.stop()
            self._site = None
        if self._runner is not None and self._runner.server is not None:
            for connection in self._runner.server.connections:
                connection.force_close()
            # Let the client in this same loop see the close, so its pool drops those
            # connections and the next request really meets a closed port.
            for _ in range(3):
                await asyncio.sleep(0)

    async def accept(self) -> None:
        """Listen again, on the same port once one was picked."""
        if self._runner is None:
            raise RuntimeError("start() the receiver first")
        if self._site is not None:
            return
        self._site = web.TCPSite(self._runner, "127.0.0.1", self._port, reuse_address=True)
        await self._site.start()
        if self._port == 0:
            server = self._site._server
            assert isinstance(server, asyncio.base_events.Server)
            self._port = server.sockets[0].getsockname()[1]

    def respond(
        self,
        status: int,
        body: str | bytes = "",
        headers: dict[str, str] | None = None,
        times: int | None = None,
    ) -> None:
        """Answer with this; ``times=None`` from now on, else for the next ``times`` requests."""
        self._script(_static(status, body, headers), times)

    def respond_with(self, handler: Handler) -> None:
        async def answer(received: Received, request: web.Request) -> web.StreamResponse:
            result = handler(received)
            if inspect.isawaitable(result):
                return await result
            return result

        self._script(answer, None)

    def hang(self, seconds: float, times: int | None = None) -> None:
        """Wait ``seconds`` before answering as the permanent script says."""
        fallback = self._permanent
        stopping = self._stopping

        async def answer(received: Received, request: web.Request) -> web.StreamResponse:
            # stop() ends the wait at once, so tearing a test down never waits it out.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), seconds)
            return await fallback(received, request)

        self._script(answer, times)

    def garbage(self, times: int | None = None) -> None:
        """Reply with bytes that are not HTTP, then close the connection."""
        self._script(_garbage, times)

    def cut_off(self, times: int | None = None) -> None:
        """Start a 200 answer promising 10000 bytes, send 100, then close the connection."""
        self._script(_cut_off, times)

    def keys(self) -> list[str]:
        """The Idempotency-Key of every request, in order."""
        return [_header(received.headers, "idempotency-key") for received in self.requests]

    def _script(self, answer: _Answer, times: int | None) -> None:
        if times is None:
            self._permanent = answer
            self._queue.clear()
        elif times > 0:
            self._queue.append(_Scripted(answer, times))

    def _next_answer(self) -> _Answer:
        if not self._queue:
            return self._permanent
        scripted = self._queue[0]
        scripted.remaining -= 1
        if scripted.remaining <= 0:
            self._queue.pop(0)
        return scripted.answer

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        received = Received(
            path=request.path_qs,
            headers=dict(request.headers),
            body=body,
            json=parsed,
            at=time.monotonic(),
        )
        self.requests.append(received)
        return await self._next_answer()(received, request)


def _static(status: int, body: str | bytes, headers: dict[str, str] | None) -> _Answer:
    data = body.encode() if isinstance(body, str) else body

    async def answer(received: Received, request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, body=data, headers=headers)

    return answer


async def _garbage(received: Received, request: web.Request) -> web.StreamResponse:
    transport = request.transport
    if transport is not None:
        transport.write(b"NOT HTTP\r\n\r\n")
        transport.close()
    # aiohttp drops a response it can no longer write; nothing reaches the client after close.
    return web.Response()


async def _cut_off(received: Received, request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(status=200, headers={"Content-Length": "10000"})
    await response.prepare(request)
    await response.write(b"x" * 100)
    if request.transport is not None:
        request.transport.close()
    return response


def _header(headers: dict[str, str], name: str) -> str:
    for candidate, value in headers.items():
        if candidate.lower() == name:
            return value
    return ""
