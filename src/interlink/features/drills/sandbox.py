"""A sandbox downstream: a real HTTP server on 127.0.0.1 that books what it receives and
misbehaves along a timeline.

What a request meets is decided by :func:`decide`, a pure function of the timeline, the time
since the drill began, the payload and a seeded random source. ``down`` is the one fault that
is not an answer: the sandbox stops listening (connection refused) while it lasts.

The sandbox keeps a ledger like a downstream's books: a request it answers 2xx is *booked*,
and so is one answered by ``ack_twice`` (booked, then 500: the hub sends it again and the
sandbox sees a duplicate with the same Idempotency-Key) or ``cut_off`` (booked, then the
connection dies mid-response).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from interlink.features.drills.spec import FaultStep
from interlink.loopback import LoopbackServer
from interlink.scenarios import matches

# How often the timeline is looked at for down/up switches.
TICK = 0.01


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one request."""

    action: str  # ok, hang, status, ack_twice, cut_off, refuse
    fault: str = "up"
    delay: float = 0.0
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    message: str = ""


def decide(
    steps: Sequence[FaultStep], elapsed: float, payload: Any, rng: random.Random
) -> Decision:
    """The answer the timeline gives a request arriving ``elapsed`` seconds into the drill.

    Latency of every active ``slow`` step adds up; the first other active step (in file order)
    that fires decides the answer. Steps with a ``rate`` fire on that share of requests.
    """
    active = [s for s in steps if s.active(elapsed)]
    delay = 0.0
    for step in active:
        if step.fault == "slow":
            delay += step.latency.total_seconds() + rng.random() * step.jitter.total_seconds()
    for step in active:
        kind = step.fault
        if kind == "down":
            return Decision("refuse", kind, delay)
        if kind == "timeout":
            return Decision("hang", kind, delay)
        if kind == "reject":
            if step.when and matches(step.when, payload):
                return Decision("status", kind, delay, 422, message=step.message)
            continue
        if kind in ("error", "throttle", "ack_twice", "cut_off") and rng.random() < step.rate:
            if kind == "error":
                return Decision("status", kind, delay, step.status, message="drill: server error")
            if kind == "throttle":
                seconds = max(0, round(step.retry_after.total_seconds()))
                return Decision(
                    "status",
                    kind,
                    delay,
                    429,
                    {"Retry-After": str(seconds)},
                    "drill: slow down",
                )
            return Decision(kind, kind, delay)
    return Decision("ok", "slow" if delay else "up", delay)


@dataclass(slots=True)
class Received:
    at: float
    """Seconds since the drill began."""
    system: str
    path: str
    document_id: str
    key: str
    revision: int
    type: str
    payload: Any
    fault: str
    status: int | None
    """What the sandbox answered; None when it gave no HTTP answer (hung, cut off, refused)."""
    booked: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "at": round(self.at, 3),
            "system": self.system,
            "path": self.path,
            "document_id": self.document_id,
            "key": self.key,
            "revision": self.revision,
            "fault": self.fault,
            "status": self.status,
            "booked": self.booked,
        }


class Ledger:
    """What a sandbox took (requests, messages, file lines) and which of them it booked:
    the same for every kind of target, so the expectations read them alike."""

    received: list[Received]

    def booked(self) -> list[Received]:
        return [r for r in self.received if r.booked]

    def duplicates(self) -> list[Received]:
        """Bookings of a document already booked (same Idempotency-Key)."""
        seen: set[str] = set()
        found = []
        for r in self.booked():
            ident = self.identity(r)
            if ident in seen:
                found.append(r)
            seen.add(ident)
        return found

    def identity(self, received: Received) -> str:
        return received.document_id


class Sandbox(Ledger):
    """One target system's stand-in. ``start()`` binds a loopback port; ``begin()`` starts the
    timeline; ``stop()`` closes everything. ``now`` is injectable for tests of the timeline."""

    def __init__(
        self,
        system: str,
        steps: Sequence[FaultStep] = (),
        *,
        timeout: float = 10.0,
        seed: int = 1,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.system = system
        self.steps = list(steps)
        self.timeout = timeout
        self.rng = random.Random(f"{seed}:{system}")  # noqa: S311 - reproducible faults
        self.now = now
        self.t0: float | None = None
        self.received: list[Received] = []
        self._server: LoopbackServer | None = None
        self._stopping = asyncio.Event()
        self._ticker: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start the sandbox first"
        return self._server.url

    @property
    def listening(self) -> bool:
        return self._server is not None and self._server.listening

    def elapsed(self) -> float:
        return 0.0 if self.t0 is None else self.now() - self.t0

    # -- life -----------------------------------------------------------------------------

    async def start(self) -> Sandbox:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # handler_cancellation: a client that gives up ends a hanging handler too.
        self._server = await LoopbackServer.start(
            app, handler_cancellation=True, shutdown_timeout=0.5
        )
        return self

    def begin(self, t0: float | None = None) -> None:
        """Start the timeline now (or at ``t0`` on the ``now`` clock)."""
        self.t0 = self.now() if t0 is None else t0
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._tick())

    async def stop(self) -> None:
        self._stopping.set()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        if self._server is not None:
            await self._server.close()
            self._server = None

    def down(self) -> bool:
        """A ``down`` step is active now."""
        return any(s.fault == "down" and s.active(self.elapsed()) for s in self.steps)

    async def apply(self) -> None:
        """Listen or not, as the timeline says now."""
        if self._server is None:
            return
        if self.down():
            if self._server.listening:
                await self._server.refuse()
        else:
            await self._server.listen()

    async def _tick(self) -> None:
        while not self._stopping.is_set():
            await self.apply()
            await asyncio.sleep(TICK)

    # -- the ledger -----------------------------------------------------------------------

    # -- answering ------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            payload = None
        headers = request.headers
        try:
            revision = int(headers.get("Interlink-Revision", "0"))
        except ValueError:
            revision = 0
        received = Received(
            at=self.elapsed(),
            system=self.system,
            path=request.path,
            document_id=headers.get("Idempotency-Key", ""),
            key=headers.get("Interlink-Key", ""),
            revision=revision,
            type=headers.get("Interlink-Document-Type", ""),
            payload=payload,
            fault="up",
            status=None,
            booked=False,
        )
        self.received.append(received)
        decision = decide(self.steps, received.at, payload, self.rng)
        received.fault = decision.fault
        if decision.delay > 0:
            await self._sleep(decision.delay)
        if decision.action == "refuse" or self.down():
            # Down began between two ticks, or while this request waited: the downstream
            # went away before it took the document. Nothing is booked, no answer is sent.
            if request.transport is not None:
                request.transport.close()
            return web.Response()
        if decision.action == "hang":
            await self._sleep(self.timeout + 1.0)
            return web.Response(status=504, text="drill: too late")
        if decision.action == "status":
            received.status = decision.status
            return web.json_response(
                {"error": decision.message}, status=decision.status, headers=decision.headers
            )
        received.booked = True
        if decision.action == "ack_twice":
            received.status = 500
            return web.json_response({"error": "drill: booked, but answered 500"}, status=500)
        if decision.action == "cut_off":
            response = web.StreamResponse(status=200, headers={"Content-Length": "10000"})
            await response.prepare(request)
            await response.write(b"x" * 100)
            if request.transport is not None:
                request.transport.close()
            return response
        received.status = 200
        return web.json_response({"ok": True, "booked": received.document_id})

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
