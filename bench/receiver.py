"""A loopback receiver for benchmarks, run in its own process so it doesn't share our GIL.

It answers 200 to every POST, counts unique Idempotency-Keys, and, when a payload carries
``t0`` (a time.monotonic() stamp, comparable across processes on Linux), records the
submit-to-delivered latency.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import socket
import time
from typing import Any

from aiohttp import web


def _serve(sock: socket.socket, queue: Any) -> None:
    keys: set[str] = set()
    latencies: list[float] = []
    requests = 0
    first = last = 0.0  # time.monotonic() of the first and the latest request

    async def post(request: web.Request) -> web.Response:
        nonlocal requests, first, last
        body = await request.read()
        requests += 1
        last = time.monotonic()
        first = first or last
        key = request.headers.get("Idempotency-Key")
        if key:
            keys.add(key)
        if b'"t0"' in body:
            t0 = json.loads(body).get("t0")
            if t0 is not None:
                latencies.append(time.monotonic() - float(t0))
        return web.Response(text='{"ok":true}', content_type="application/json")

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response(
            {
                "requests": requests,
                "unique": len(keys),
                "latencies": latencies,
                "first": first,
                "last": last,
            }
        )

    async def reset(_request: web.Request) -> web.Response:
        nonlocal requests, first, last
        keys.clear()
        latencies.clear()
        requests = 0
        first = last = 0.0
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/_stats", stats)
    app.router.add_post("/_reset", reset)
    app.router.add_post("/{tail:.*}", post)
    web.run_app(app, sock=sock, print=None, access_log=None, handle_signals=True)


class ReceiverProcess:
    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        ctx = mp.get_context("fork")
        self.process = ctx.Process(target=_serve, args=(self.sock, None), daemon=True)

    def __enter__(self) -> ReceiverProcess:
        self.process.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.join(5)
        self.sock.close()
