"""The AMQP transport: one message per delivery to a RabbitMQ exchange, with publisher confirms.

One connection and one confirming channel per system, opened on the first send and reused by
every flow into the system; a lost one is opened again by the next send, so the engine's retry
schedule and circuit decide how often a broker that is down is tried. Each message is
published persistent and mandatory, and the broker's answer is mapped onto the outcome table
as an HTTP status would be (docs/transports.md, "AMQP (RabbitMQ)"):

- confirmed (``basic.ack``): 200, delivered;
- returned as unroutable (``basic.return``, no queue bound for the routing key) or no such
  exchange: 404, rejected;
- refused (``basic.nack``): 422, rejected;
- access refused (the user may not publish there, or log in): 403, unauthorized;
- no connection, a timeout, the connection lost before the confirm: TransportError,
  unavailable.

The request's ``url`` is the flow's address (:func:`interlink.config.broker_address`): the
exchange and routing key. The credentials are in the environment variable the topology names.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import time
from functools import lru_cache

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection
from pamqp import commands
from pamqp.common import FieldValue

from interlink.config import address_parts
from interlink.errors import TransportError
from interlink.transports.amqp_frames import Publisher
from interlink.transports.base import Request, Response
from interlink.transports.http import DETAIL_LIMIT

# Headers that travel as message properties instead.
_AS_PROPERTIES = frozenset({"content-type"})
_CONTENT_TYPE = "application/json"
_CONFIRMED = b""
_PERSISTENT = 2  # delivery mode: written to disk by a durable queue


class AmqpTransport:
    def __init__(self, system: str, url_env: str) -> None:
        self.system = system
        self.url_env = url_env
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        # The channel's protocol level: aio-pika's Message and Exchange.publish cost a quarter
        # more CPU per message and add nothing we use.
        self._raw: aiormq.Channel | None = None
        # Publishes on it with frames of our own (amqp_frames.py): a quarter of basic_publish's
        # CPU. None if aiormq's internals are not the ones it knows: basic_publish then.
        self._publisher: Publisher | None = None
        # One connect at a time: a burst of sends to a broker that is down makes one attempt,
        # and the sends that waited for it share its failure.
        self._connecting = asyncio.Lock()
        self._tries = 0  # connect attempts finished
        self._failure: Exception | None = None
        # message_id → the publish of it in flight, done once answered.
        self._inflight: dict[str, asyncio.Future[None]] = {}

    async def send(self, request: Request) -> Response:
        # The broker names a returned message by its message_id alone: two in flight with one
        # id (a document on two flows into this system) could not be told apart, and the
        # unroutable one would count as delivered. The second waits for the first's answer.
        message_id = request.headers.get("Idempotency-Key")
        if message_id is None:
            return await self._publish(request)
        while (busy := self._inflight.get(message_id)) is not None:
            await asyncio.wait([busy])  # never cancels it, as awaiting it would
        done = self._inflight[message_id] = asyncio.get_running_loop().create_future()
        try:
            return await self._publish(request)
        finally:
            del self._inflight[message_id]
            done.set_result(None)

    async def _publish(self, request: Request) -> Response:
        exchange, routing_key = _destination(request.url)
        started = time.perf_counter()
        try:
            raw = self._raw if self._usable() else None
            if raw is None:
                raw = await self._open_channel(request.timeout)
            publisher = self._publisher
            if publisher is not None:
                await publisher.publish(
                    exchange,
                    routing_key,
                    request.body,
                    _CONTENT_TYPE,
                    request.headers.get("Idempotency-Key"),
                    _headers(request),
                    request.timeout,
                )
            else:
                await _basic_publish(raw, exchange, routing_key, request)
        except asyncio.CancelledError:
            raise
        except aiormq.exceptions.PublishError as error:
            # Returned: the exchange has no queue bound for this routing key.
            frame = error.frame
            text = "unroutable"
            if isinstance(frame, commands.Basic.Return):
                text = f"unroutable: {frame.reply_code} {frame.reply_text}"
            return _answer(404, f"{_where(self, request)}: {text}", started)
        except aiormq.exceptions.DeliveryError:
            text = "the broker refused the message (basic.nack)"
            return _answer(422, f"{_where(self, request)}: {text}", started)
        except aiormq.exceptions.ChannelNotFoundEntity as error:
            # Publishing to an exchange that does not exist: the broker closes the channel.
            self._channel_lost()
            return _answer(404, f"{_where(self, request)}: {_reply(error)}", started)
        except aiormq.exceptions.ChannelAccessRefused as error:
            self._channel_lost()
            return _answer(403, f"{_where(self, request)}: {_reply(error)}", started)
        except aiormq.exceptions.ProbableAuthenticationError as error:
            await self._forget_closed()
            return _answer(403, f"{_where(self, request)}: {_reply(error)}", started)
        except Exception as error:
            # A timeout leaves a connection that may still be good; a closed one goes.
            await self._forget_closed()
            raise _transport_error(error, _where(self, request), request.timeout) from error
        return Response(
            status=200,
            headers={},
            body=_CONFIRMED,
            elapsed_ms=(time.perf_counter() - started) * 1000,
        )

    async def close(self) -> None:
        await self._close_connection()

    async def _open_channel(self, timeout: float) -> aiormq.Channel:
        tries = self._tries
        async with self._connecting:
            if self._raw is not None and self._usable():
                return self._raw
            if self._tries != tries and self._failure is not None:
                # Another send tried while this one waited, and failed: so does this one,
                # rather than each send of a burst waiting out its own connect in turn.
                raise self._failure
            try:
                raw = await self._open(timeout)
            except Exception as error:
                self._failure = error
                raise
            finally:
                self._tries += 1  # counted once over: a send that waited for it can tell
            self._failure = None
            return raw

    async def _open(self, timeout: float) -> aiormq.Channel:
        self._channel_lost()
        connection = self._connection
        if connection is None or not self._connected():
            await self._close_connection()
            connection = await connect(self.system, self.url_env, timeout)
            self._connection = connection
        # Exchanges are not declared: they are the broker owner's. Publishing to one that
        # does not exist closes the channel with 404, which is the answer.
        self._channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        raw = await self._channel.get_underlay_channel()
        if not isinstance(raw, aiormq.Channel):  # what aio_pika.connect always makes
            raise TypeError(f"unexpected AMQP channel {type(raw).__name__}")
        self._raw = raw
        self._publisher = Publisher.attach(raw)
        return raw

    def _connected(self) -> bool:
        # A connection the broker dropped is not is_closed (only one we closed is); it is no
        # longer connected.
        connection = self._connection
        return connection is not None and connection.connected.is_set()

    def _usable(self) -> bool:
        channel = self._channel
        return channel is not None and not channel.is_closed and self._connected()

    def _channel_lost(self) -> None:
        # The broker closed the channel (a channel error); the connection stays.
        self._channel = self._raw = None
        self._publisher = None

    async def _forget_closed(self) -> None:
        if not self._connected():
            await self._close_connection()
        elif self._channel is not None and self._channel.is_closed:
            self._channel_lost()

    async def _close_connection(self) -> None:
        connection, self._connection = self._connection, None
        self._channel_lost()
        if connection is not None and not connection.is_closed:
            # Closing what is already broken may fail too; it is gone either way.
            with contextlib.suppress(Exception):
                await connection.close()


async def connect(system: str, url_env: str, timeout: float) -> AbstractConnection:
    """A connection to ``system``'s broker at the URL in ``url_env``, within ``timeout``
    seconds; the transport's and readiness's."""
    url = os.environ.get(url_env)
    if not url:
        raise TransportError("local", f"AMQP {system}: {url_env} is not set (the broker URL)")
    # Made, then connected, so that a connect that fails is closed here: left to the garbage
    # collector it warns, on whatever thread frees it, of a close never awaited.
    connection = aio_pika.Connection(aio_pika.connection.make_url(url))
    try:
        await connection.connect(timeout=timeout)
    except BaseException:
        with contextlib.suppress(Exception):
            await connection.close()
        raise
    return connection


def _headers(request: Request) -> dict[str, str]:
    return {k: v for k, v in request.headers.items() if k.lower() not in _AS_PROPERTIES}


async def _basic_publish(
    raw: aiormq.Channel, exchange: str, routing_key: str, request: Request
) -> None:
    """Publish with aiormq's own basic_publish: what Publisher does, when it cannot attach."""
    headers: dict[str, FieldValue] = dict(_headers(request))
    properties = commands.Basic.Properties(
        content_type=_CONTENT_TYPE,
        delivery_mode=_PERSISTENT,
        message_id=request.headers.get("Idempotency-Key"),
        headers=headers,
    )
    await raw.basic_publish(
        request.body,
        exchange=exchange,
        routing_key=routing_key,
        properties=properties,
        # Unroutable comes back (basic.return) rather than being dropped.
        mandatory=True,
        timeout=request.timeout,
        # The confirm is what we wait for; waiting for the socket's buffer to drain as well
        # costs a round through the writer per message.
        wait=False,
    )


@lru_cache(maxsize=256)  # one address per flow: parsed once, not per delivery
def _destination(url: str) -> tuple[str, str]:
    parts = address_parts(url)
    if not url.startswith("amqp:") or len(parts) != 2:
        raise TransportError("local", f"{url!r} is not an AMQP address (amqp:<exchange>/<key>)")
    return parts[0], parts[1]


def _where(transport: AmqpTransport, request: Request) -> str:
    exchange, routing_key = _destination(request.url)
    return f"AMQP {transport.system} exchange {exchange or '(default)'!r} key {routing_key!r}"


def _answer(status: int, text: str, started: float) -> Response:
    return Response(
        status=status,
        headers={},
        body=text[:DETAIL_LIMIT].encode(),
        elapsed_ms=(time.perf_counter() - started) * 1000,
    )


def _reply(error: Exception) -> str:
    # aiormq's channel and connection errors carry the broker's reply text as an argument.
    frame = error.args[0] if error.args else None
    if isinstance(frame, commands.Channel.Close | commands.Connection.Close):
        return f"{frame.reply_code} {frame.reply_text}"
    return " ".join(str(error).split()) or type(error).__name__


def _transport_error(error: Exception, where: str, timeout: float) -> TransportError:
    if isinstance(error, TransportError):
        return error
    if isinstance(error, asyncio.TimeoutError | TimeoutError):
        return TransportError("timeout", f"{where}: no confirm within {timeout:g}s")
    detail = " ".join(str(error).split())[:DETAIL_LIMIT] or type(error).__name__
    # aiormq reports a failed connect as AMQPConnectionError(errno, text): a refused TCP
    # connection, or a negative getaddrinfo code for a name that did not resolve.
    code = error.args[0] if error.args and isinstance(error.args[0], int) else None
    if isinstance(error, ConnectionRefusedError) or code == errno.ECONNREFUSED:
        return TransportError("refused", f"{where}: {detail}")
    if isinstance(error, socket.gaierror) or (code is not None and code < 0):
        return TransportError("dns", f"{where}: {detail}")
    # The connection or channel closed under us, or the broker said something we cannot use.
    return TransportError("reset", f"{where}: {detail}")
