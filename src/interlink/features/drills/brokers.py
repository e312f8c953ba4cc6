"""A sandbox for a system reached through a message broker (``transport: amqp`` or ``nats``).

The real broker stays real: the drill makes a scratch exchange and queue (AMQP) or stream
(NATS) of its own, with a unique name, on the broker the drill file names by an environment
variable (``brokers.<system>.broker_env``; never the system's own ``url_env``), and a
consumer that books every message it takes, as the downstream's books. The hub reaches the
broker only through a :class:`Relay`, a TCP relay on 127.0.0.1 that plays the timeline:
``down`` stops listening and cuts every connection through it (the broker gone mid-run),
``slow`` holds what the hub sends for ``latency`` before passing it on. The consumer reaches
the broker directly: the fault is between the hub and its broker.

A booked message's document is its ``message_id`` (AMQP) or ``Nats-Msg-Id`` (NATS), its key
the ``Interlink-Key`` header and its revision ``Interlink-Revision``, so the expectations judge
it as they judge a request. The scratch exchange, queue and stream are deleted at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import random
import secrets
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from interlink.errors import InputError
from interlink.features.drills.sandbox import TICK, Ledger, Received
from interlink.features.drills.spec import FaultStep

CONNECT_TIMEOUT = 5.0
# Scratch streams outlive a drill that was killed; their messages do not outlive this.
STREAM_MAX_AGE = 3600.0


class Relay:
    """A TCP relay on 127.0.0.1 to ``target`` that obeys a timeline: while ``down()`` it does
    not listen and every connection through it is cut (aborted, not closed politely); each
    chunk the client sends waits ``latency()`` seconds before going on."""

    def __init__(
        self,
        target: tuple[str, int],
        down: Callable[[], bool],
        latency: Callable[[], float],
    ) -> None:
        self.target = target
        self.down = down
        self.latency = latency
        self.port = 0
        self.connections = 0  # accepted
        self.cut = 0  # cut by a down step
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._stopping = asyncio.Event()
        self._ticker: asyncio.Task[None] | None = None

    @property
    def listening(self) -> bool:
        return self._server is not None

    async def start(self) -> Relay:
        await self._listen()
        return self

    def begin(self) -> None:
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._tick())

    async def stop(self) -> None:
        self._stopping.set()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        await self._refuse()

    async def _listen(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self._server = await asyncio.start_server(self._serve, sock=sock)
        self.port = int(sock.getsockname()[1])

    async def _refuse(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
            self.cut += 1
        self._writers.clear()

    async def _tick(self) -> None:
        while not self._stopping.is_set():
            down = self.down()
            if down and self._server is not None:
                await self._refuse()
            elif not down and self._server is None:
                await self._listen()
            await asyncio.sleep(TICK)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down() or self._server is None:
            writer.transport.abort()
            return
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        pair = {writer, up_writer}
        self._writers |= pair
        await asyncio.gather(
            self._pipe(reader, up_writer, self.latency),
            self._pipe(up_reader, writer, lambda: 0.0),
            return_exceptions=True,
        )
        for w in pair:
            self._writers.discard(w)
            w.transport.abort()

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        latency: Callable[[], float],
    ) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while chunk := await reader.read(65536):
                delay = latency()
                if delay:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), delay)
                writer.write(chunk)
                await writer.drain()
        writer.transport.abort()


def broker_url(env: str, kind: str) -> str:
    """The scratch broker's URL from the variable ``env`` names; InputError when unusable."""
    url = os.environ.get(env, "").strip()
    scheme = f"{kind}://"
    if not url:
        raise InputError(
            f"the drill needs a broker for its scratch {_scratch_kind(kind)}: set {env} to a "
            f"{scheme} URL where the drill may create and delete its own"
        )
    parts = urlsplit(url)
    # TLS is not relayed: the hub would meet the broker's certificate at 127.0.0.1.
    if parts.scheme != kind or not parts.hostname or "," in url:
        raise InputError(f"{env} must be one {scheme} URL (host and port, without TLS)")
    return url


def _scratch_kind(kind: str) -> str:
    return "exchange and queue" if kind == "amqp" else "stream"


def through(url: str, port: int) -> str:
    """``url`` with its host and port replaced by the relay's (credentials and path kept)."""
    parts = urlsplit(url)
    user = parts.netloc.rpartition("@")[0]
    netloc = f"{user}@127.0.0.1:{port}" if user else f"127.0.0.1:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return "" if value is None else str(value)


class BrokerSandbox(Ledger):
    """One broker target's stand-in: the scratch exchange/queue or stream, the consumer that
    books, the relay the hub goes through. Same surface as the HTTP sandbox."""

    def __init__(
        self,
        system: str,
        kind: str,
        broker_env: str,
        steps: Sequence[FaultStep] = (),
        *,
        seed: int = 1,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.system = system
        self.kind = kind  # amqp or nats
        self.broker_env = broker_env
        self.steps = list(steps)
        self.now = now
        self.rng = random.Random(f"{seed}:{system}")  # noqa: S311 - reproducible jitter
        self.t0: float | None = None
        token = secrets.token_hex(5)
        self.scratch = f"interlink-drill-{token}"
        # The variable the rehearsal's topology names as the system's url_env: the relay's URL.
        self.env = f"INTERLINK_DRILL_BROKER_{token.upper()}"
        self.received: list[Received] = []
        # routing key (AMQP) or subject (NATS) → the flow's path, to tell the flows apart.
        self.paths: dict[str, str] = {}
        self.relay: Relay | None = None
        self._stopping = asyncio.Event()
        self._connection: Any = None
        self._cleanup: list[Callable[[], Any]] = []

    # -- the same surface as the HTTP sandbox ---------------------------------------------

    @property
    def url(self) -> str:
        port = self.relay.port if self.relay is not None else 0
        where = "exchange" if self.kind == "amqp" else "stream"
        return f"{self.kind}://127.0.0.1:{port} ({where} {self.scratch})"

    def elapsed(self) -> float:
        return 0.0 if self.t0 is None else self.now() - self.t0

    def down(self) -> bool:
        return any(s.fault == "down" and s.active(self.elapsed()) for s in self.steps)

    def latency(self) -> float:
        """How long what the hub sends waits in the relay now: every active ``slow`` step's
        latency, and up to its jitter more, at random."""
        elapsed = self.elapsed()
        return sum(
            s.latency.total_seconds() + self.rng.random() * s.jitter.total_seconds()
            for s in self.steps
            if s.fault == "slow" and s.active(elapsed)
        )

    def slow(self) -> bool:
        return any(s.fault == "slow" and s.active(self.elapsed()) for s in self.steps)

    async def start(self) -> BrokerSandbox:
        url = broker_url(self.broker_env, self.kind)
        parts = urlsplit(url)
        default = 5672 if self.kind == "amqp" else 4222
        try:
            if self.kind == "amqp":
                await self._start_amqp(url)
            else:
                await self._start_nats(url)
        except InputError:
            raise
        except Exception as error:
            await self._close()
            detail = " ".join(str(error).split()) or type(error).__name__
            raise InputError(
                f"the drill could not make its scratch {_scratch_kind(self.kind)} on the "
                f"broker {self.broker_env} names: {detail}"
            ) from None
        target = (parts.hostname or "127.0.0.1", parts.port or default)
        self.relay = await Relay(target, self.down, self.latency).start()
        os.environ[self.env] = through(url, self.relay.port)
        return self

    def begin(self, t0: float | None = None) -> None:
        self.t0 = self.now() if t0 is None else t0
        if self.relay is not None:
            self.relay.begin()

    async def stop(self) -> None:
        self._stopping.set()
        os.environ.pop(self.env, None)
        if self.relay is not None:
            await self.relay.stop()
        await self._close()
        if self.kind == "amqp":
            # The AMQP client closes a connection that never opened (the relay was down)
            # only when it is collected, and only on a running loop: let that happen now.
            gc.collect()
            for _ in range(3):
                await asyncio.sleep(0)

    async def drain(self, documents: set[str], timeout: float = 2.0) -> None:
        """Wait (at most ``timeout``) until the consumer has booked every one of
        ``documents``: a confirm or ack can come back before the consumer takes the message."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if documents <= {r.document_id for r in self.received}:
                return
            await asyncio.sleep(0.02)

    def info(self) -> dict[str, Any]:
        relay = self.relay
        return {
            "kind": self.kind,
            "scratch": self.scratch,
            "relay_port": relay.port if relay is not None else None,
            "connections": relay.connections if relay is not None else 0,
            "cut": relay.cut if relay is not None else 0,
        }

    # -- the ledger -----------------------------------------------------------------------

    def _book(self, address: str, document_id: str, headers: dict[str, Any], body: bytes) -> None:
        try:
            revision = int(_text(headers.get("Interlink-Revision")) or "0")
        except ValueError:
            revision = 0
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            payload = None
        self.received.append(
            Received(
                at=self.elapsed(),
                system=self.system,
                path=self.paths.get(address, "/"),
                document_id=document_id or _text(headers.get("Idempotency-Key")),
                key=_text(headers.get("Interlink-Key")),
                revision=revision,
                type=_text(headers.get("Interlink-Document-Type")),
                payload=payload,
                fault="slow" if self.slow() else "up",
                status=None,
                booked=True,
            )
        )

    # -- AMQP -----------------------------------------------------------------------------

    async def _start_amqp(self, url: str) -> None:
        import aio_pika

        connection = self._connection = await aio_pika.connect(url, timeout=CONNECT_TIMEOUT)
        channel = await connection.channel()
        # auto_delete and exclusive: gone with the consumer's connection even if the drill
        # is killed; deleted explicitly at the end as well.
        exchange = await channel.declare_exchange(
            self.scratch, aio_pika.ExchangeType.FANOUT, auto_delete=True
        )
        self._cleanup.append(exchange.delete)
        queue = await channel.declare_queue(self.scratch, exclusive=True)
        self._cleanup.insert(0, queue.delete)
        await queue.bind(exchange)

        async def take(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            self._book(
                message.routing_key or "",
                message.message_id or "",
                dict(message.headers or {}),
                message.body,
            )

        await queue.consume(take, no_ack=True)

    # -- NATS -----------------------------------------------------------------------------

    async def _start_nats(self, url: str) -> None:
        import nats
        from nats.js.api import StorageType, StreamConfig

        async def quiet(*_: Any) -> None:
            return None

        client = self._connection = await nats.connect(
            url,
            connect_timeout=round(CONNECT_TIMEOUT),
            allow_reconnect=False,
            max_reconnect_attempts=1,
            error_cb=quiet,
            disconnected_cb=quiet,
            closed_cb=quiet,
        )
        js = client.jetstream()
        await js.add_stream(
            StreamConfig(
                name=self.scratch,
                subjects=[f"{self.scratch}.>"],
                storage=StorageType.MEMORY,
                max_age=STREAM_MAX_AGE,
            )
        )

        async def delete() -> None:
            await js.delete_stream(self.scratch)

        self._cleanup.append(delete)

        async def take(message: Any) -> None:
            headers = dict(message.headers or {})
            self._book(message.subject, _text(headers.get("Nats-Msg-Id")), headers, message.data)

        await js.subscribe(f"{self.scratch}.>", stream=self.scratch, cb=take, ordered_consumer=True)

    async def _close(self) -> None:
        for step in self._cleanup:
            # The scratch objects go even when one of them cannot (logged by the client).
            with contextlib.suppress(Exception):
                await asyncio.wait_for(step(), CONNECT_TIMEOUT)
        self._cleanup.clear()
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()
