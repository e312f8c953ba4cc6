"""The NATS JetStream transport: one message per delivery, published and acknowledged.

One connection per system, opened on the first send and reused by every flow into the system;
it does not reconnect by itself: a lost one is opened again by the next send, so the engine's
retry schedule and circuit decide how often a server that is down is tried. The document id
goes as ``Nats-Msg-Id``, so JetStream drops a second copy within the stream's duplicate window.
The answer is mapped onto the outcome table as an HTTP status would be (docs/transports.md,
"NATS JetStream"):

- acknowledged by the stream: 200, delivered; acknowledged as a duplicate: 409, duplicate;
- no stream takes the subject (no responders): 404, rejected;
- an error from JetStream: its own code, which is HTTP's (503 unavailable, 400 rejected...);
- no connection, no ack in time, the connection lost: TransportError, unavailable.

The request's ``url`` is the flow's address (:func:`interlink.config.broker_address`): the
subject. Server URLs with credentials come from the environment variable the topology names.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from functools import lru_cache

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext

from interlink.config import NatsSettings, address_parts
from interlink.errors import TransportError
from interlink.transports.base import Request, Response
from interlink.transports.http import DETAIL_LIMIT


class NatsTransport:
    def __init__(self, system: str, settings: NatsSettings) -> None:
        self.system = system
        self.settings = settings
        self._client: Client | None = None
        self._js: JetStreamContext | None = None
        # One connect at a time: a burst of sends to a server that is down makes one attempt,
        # and the sends that waited for it share its failure.
        self._connecting = asyncio.Lock()
        self._tries = 0  # connect attempts finished
        self._failure: Exception | None = None

    async def send(self, request: Request) -> Response:
        subject = _subject(request.url)
        where = f"NATS {self.system} subject {subject!r}"
        started = time.perf_counter()
        headers = dict(request.headers)  # Content-Type among them: NATS has no property for it
        key = headers.get("Idempotency-Key")
        if key is not None:
            headers["Nats-Msg-Id"] = key
        try:
            js = await self._jetstream(request.timeout)
            ack = await js.publish(
                subject,
                request.body,
                timeout=request.timeout,
                stream=self.settings.stream,
                headers=headers,
            )
        except asyncio.CancelledError:
            raise
        except nats.js.errors.NoStreamResponseError:
            return _answer(404, f"{where}: no stream takes the subject (no responders)", started)
        except nats.js.errors.APIError as error:
            status = error.code if isinstance(error.code, int) and 400 <= error.code < 600 else 502
            text = f"{error.description or 'JetStream error'} (err_code {error.err_code})"
            return _answer(status, f"{where}: {text}", started)
        except nats.errors.NoRespondersError:
            return _answer(404, f"{where}: no stream takes the subject (no responders)", started)
        except nats.errors.AuthorizationError:
            await self.close()
            return _answer(403, f"{where}: authorization violation", started)
        except Exception as error:
            await self._forget_closed()
            raise _transport_error(error, where, request.timeout) from error
        receipt = {"stream": ack.stream, "seq": ack.seq, "duplicate": bool(ack.duplicate)}
        return Response(
            status=409 if ack.duplicate else 200,
            headers={},
            body=json.dumps(receipt).encode(),
            elapsed_ms=(time.perf_counter() - started) * 1000,
        )

    async def close(self) -> None:
        client, self._client, self._js = self._client, None, None
        if client is not None and not client.is_closed:
            # Closing what is already broken may fail too; it is gone either way.
            with contextlib.suppress(Exception):
                await client.close()

    async def _jetstream(self, timeout: float) -> JetStreamContext:
        js = self._js
        if js is not None and self._client is not None and self._client.is_connected:
            return js
        tries = self._tries
        async with self._connecting:
            if self._js is not None and self._client is not None and self._client.is_connected:
                return self._js
            if self._tries != tries and self._failure is not None:
                # Another send tried while this one waited, and failed: so does this one,
                # rather than each send of a burst waiting out its own connect in turn.
                raise self._failure
            await self.close()
            try:
                self._client = await self._connect(timeout)
            except Exception as error:
                self._failure = error
                raise
            finally:
                self._tries += 1  # counted once over: a send that waited for it can tell
            self._failure = None
            self._js = self._client.jetstream()
            return self._js

    async def _connect(self, timeout: float) -> Client:
        return await connect(self.system, self.settings, timeout)

    async def _forget_closed(self) -> None:
        if self._client is not None and not self._client.is_connected:
            await self.close()


async def connect(system: str, settings: NatsSettings, timeout: float) -> Client:
    """A client connected to ``system``'s servers (from ``url_env`` or ``servers``) within
    ``timeout`` seconds, without reconnecting by itself; the transport's and readiness's."""
    servers = settings.servers
    if settings.url_env is not None:
        value = os.environ.get(settings.url_env)
        if not value:
            raise TransportError(
                "local",
                f"NATS {system}: {settings.url_env} is not set (the server URL)",
            )
        servers = [s.strip() for s in value.split(",") if s.strip()]
    failures: list[Exception] = []

    async def failed(error: Exception) -> None:
        failures.append(error)

    async def quiet() -> None:
        return None

    client = Client()
    connecting = client.connect(
        servers,
        # A lost connection is noticed by the sends that meet it and opened again by the
        # next one; reconnecting in the background would hold sends until their timeout.
        allow_reconnect=False,
        max_reconnect_attempts=1,
        reconnect_time_wait=0,
        connect_timeout=max(1, round(timeout)),
        error_cb=failed,
        disconnected_cb=quiet,
        closed_cb=quiet,
    )
    try:
        # The client's own connect timeout is whole seconds, per server, tried twice.
        await asyncio.wait_for(connecting, timeout)
    except BaseException as error:
        # Cut short or failed: the socket it may have opened is ours to close.
        with contextlib.suppress(Exception):
            await client.close()
        if isinstance(error, nats.errors.NoServersError) and failures:
            # Which of the servers' failures: the last one, as the client tried them.
            raise failures[-1] from None
        raise
    return client


@lru_cache(maxsize=256)  # one address per flow: parsed once, not per delivery
def _subject(url: str) -> str:
    parts = address_parts(url)
    if not url.startswith("nats:") or len(parts) != 1:
        raise TransportError("local", f"{url!r} is not a NATS address (nats:<subject>)")
    return parts[0]


def _answer(status: int, text: str, started: float) -> Response:
    return Response(
        status=status,
        headers={},
        body=text[:DETAIL_LIMIT].encode(),
        elapsed_ms=(time.perf_counter() - started) * 1000,
    )


def _transport_error(error: Exception, where: str, timeout: float) -> TransportError:
    if isinstance(error, TransportError):
        return error
    if isinstance(error, asyncio.TimeoutError | TimeoutError | nats.errors.TimeoutError):
        return TransportError("timeout", f"{where}: no ack within {timeout:g}s")
    detail = " ".join(str(error).split())[:DETAIL_LIMIT] or type(error).__name__
    if isinstance(error, ConnectionRefusedError):
        return TransportError("refused", f"{where}: {detail}")
    if isinstance(error, OSError) and (error.errno or 0) < 0:
        return TransportError("dns", f"{where}: {detail}")
    # The connection closed under us, or a reply we cannot use.
    return TransportError("reset", f"{where}: {detail}")
