"""A loopback HTTP server that can stop listening and listen again on the same port.

The demo's downstreams and the drills' sandboxes go down this way: the port is closed and
open connections are dropped, so a request meets what it meets when a system is really down.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web


class LoopbackServer:
    def __init__(self, runner: web.AppRunner) -> None:
        self._runner = runner
        self._site: web.TCPSite | None = None
        self.port = 0  # chosen by the system on the first listen, kept after

    @classmethod
    async def start(cls, app: web.Application, **runner_options: Any) -> LoopbackServer:
        runner = web.AppRunner(app, access_log=None, **runner_options)
        await runner.setup()
        server = cls(runner)
        await server.listen()
        return server

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def listening(self) -> bool:
        return self._site is not None

    async def listen(self) -> None:
        if self._site is not None:
            return
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await self._site.start()
        if self.port == 0:
            sockets = getattr(self._site._server, "sockets", None)
            assert sockets, "the loopback server did not start listening"
            self.port = sockets[0].getsockname()[1]

    async def refuse(self) -> None:
        """Stop listening and drop open connections: every request meets a closed port."""
        if self._site is not None:
            await self._site.stop()
            self._site = None
        if self._runner.server is not None:
            for connection in self._runner.server.connections:
                connection.force_close()

    async def close(self) -> None:
        await self._runner.cleanup()
        self._site = None
