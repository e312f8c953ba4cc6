"""A lean Basic.Publish for the AMQP transport: its frames encoded here, written through aiormq.

aiormq's ``Channel.basic_publish`` costs about 100 µs of CPU a message (a countdown, a timeout
scope, the channel lock, pamqp marshalling every field of every frame, one queue hop and one
socket write per message): more than the engine spends on a delivery. The messages the transport
publishes differ only in a few fields, so :class:`Publisher` encodes the three frames (method,
content header, body) with ``struct`` from parts cached per route, and hands every message
published in one turn of the event loop to aiormq's connection writer as one write.

aiormq still does everything else: the connection, its handshake and heartbeats, the channel and
``confirm.select``, and reading the broker's answers. A publish registers its confirmation as
``basic_publish`` does (the channel's delivery tag, ``confirmations`` and
``message_id_delivery_tag``), so a ``basic.ack``/``basic.nack`` (``multiple`` too) and a
``basic.return`` by message_id resolve it, and a closed channel rejects it. Those are aiormq's
internals: :meth:`Publisher.attach` checks they are there and otherwise gives None, and the
transport publishes with ``basic_publish`` instead. The frames follow AMQP 0-9-1 section 4.2.
"""

from __future__ import annotations

import asyncio
import struct
import uuid
from collections import deque
from collections.abc import Mapping
from functools import lru_cache

import aiormq
from aiormq.abc import ChannelFrame
from aiormq.channel import Returning

_METHOD, _HEADER, _BODY = 1, 2, 3
_FRAME = struct.Struct(">BHI")  # type, channel, payload size
_FRAME_END = b"\xce"
_OVERHEAD = _FRAME.size + len(_FRAME_END)
_BASIC, _PUBLISH = 60, 40
_MANDATORY = 1  # the bit field after the routing key: mandatory, not immediate
# Basic's property flags, the first property the highest bit.
_CONTENT_TYPE, _HEADERS, _DELIVERY_MODE, _MESSAGE_ID = 0x8000, 0x2000, 0x1000, 0x0080
_FLAGS = _CONTENT_TYPE | _HEADERS | _DELIVERY_MODE | _MESSAGE_ID
_HEADER_START = struct.Struct(">HHQH")  # class, weight, body size, property flags
_PERSISTENT = b"\x02"  # delivery mode 2: written to disk by a durable queue
_LONG = struct.Struct(">I")
_LONG_STRING = b"S"  # a field table's type tag for a long string


def short_string(text: str) -> bytes:
    data = text.encode()
    if len(data) > 255:
        raise ValueError(f"{text[:40]!r}...: longer than an AMQP short string (255 bytes)")
    return bytes((len(data),)) + data


def frame(kind: int, channel: int, payload: bytes) -> bytes:
    return _FRAME.pack(kind, channel, len(payload)) + payload + _FRAME_END


@lru_cache(maxsize=256)  # one per channel and route: the same for every message on it
def publish_method(channel: int, exchange: str, routing_key: str) -> bytes:
    """The Basic.Publish method frame, mandatory: unroutable comes back as basic.return."""
    payload = b"".join(
        (
            struct.pack(">HHH", _BASIC, _PUBLISH, 0),  # the last is the reserved ticket
            short_string(exchange),
            short_string(routing_key),
            bytes((_MANDATORY,)),
        )
    )
    return frame(_METHOD, channel, payload)


def string_table(fields: Mapping[str, str]) -> bytes:
    """A field table of long strings, as RabbitMQ shows headers: name, ``S``, length, UTF-8."""
    parts = []
    for name, value in fields.items():
        data = value.encode()
        parts.append(_field_name(name) + _LONG.pack(len(data)) + data)
    table = b"".join(parts)
    return _LONG.pack(len(table)) + table


@lru_cache(maxsize=1024)  # the same few header names on every message: a third of the table's cost
def _field_name(name: str) -> bytes:
    return short_string(name) + _LONG_STRING


def content_header(
    channel: int, body_size: int, content_type: str, message_id: str, headers: Mapping[str, str]
) -> bytes:
    """The content header frame: content type, headers, persistent, message_id."""
    payload = b"".join(
        (
            _HEADER_START.pack(_BASIC, 0, body_size, _FLAGS),
            short_string(content_type),
            string_table(headers),
            _PERSISTENT,
            short_string(message_id),
        )
    )
    return frame(_HEADER, channel, payload)


def message(
    method: bytes,
    channel: int,
    frame_max: int,
    body: bytes,
    content_type: str,
    message_id: str,
    headers: Mapping[str, str],
) -> bytes:
    """One message's frames, in order: the body split so no frame is over ``frame_max``."""
    parts = [method, content_header(channel, len(body), content_type, message_id, headers)]
    step = frame_max - _OVERHEAD
    if len(body) <= step:
        if body:  # an empty body has no body frame
            parts.append(frame(_BODY, channel, body))
    else:
        parts += (frame(_BODY, channel, body[i : i + step]) for i in range(0, len(body), step))
    return b"".join(parts)


class Publisher:
    """Publishes on one confirming aiormq channel, answered through the channel's own reader."""

    def __init__(self, channel: aiormq.Channel, frame_max: int) -> None:
        self._channel = channel
        self._number = channel.number
        self._frame_max = frame_max
        self._writes: asyncio.Queue[ChannelFrame] = channel.write_queue
        self._confirmations = channel.confirmations
        self._message_tags = channel.message_id_delivery_tag
        self._loop = asyncio.get_running_loop()
        self._batch: list[bytes] = []  # this turn's messages, in publish order
        # Batches waiting for room in aiormq's bounded write queue, in order, and the task that
        # puts them there; while it runs, later batches queue behind it.
        self._backlog: deque[ChannelFrame] = deque()
        self._putting = False
        channel.closing.add_done_callback(self._reject)

    @classmethod
    def attach(cls, channel: aiormq.Channel) -> Publisher | None:
        """A publisher for ``channel``, or None if aiormq's internals are not what it expects."""
        try:
            frame_max = channel.connection.connection_tune.frame_max
            expected = (
                isinstance(channel.delivery_tag, int)
                and isinstance(channel.confirmations, dict)
                and isinstance(channel.message_id_delivery_tag, dict)
                and isinstance(channel.write_queue, asyncio.Queue)
                and channel.publisher_confirms
                and frame_max > _OVERHEAD
            )
        except AttributeError:
            return None
        return cls(channel, frame_max) if expected else None

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        content_type: str,
        message_id: str | None,
        headers: Mapping[str, str],
        timeout: float,
    ) -> None:
        """Publish persistent and mandatory; return once confirmed, raise as basic_publish does.

        ``basic.nack`` raises DeliveryError, ``basic.return`` PublishError, a channel or
        connection closed under it the close's error, no answer in ``timeout`` TimeoutError.
        """
        channel = self._channel
        if channel.is_closed:
            raise aiormq.exceptions.ChannelInvalidStateError(f"{channel!r} closed")
        # A returned message is known by its message_id alone: there must be one.
        message_id = message_id or uuid.uuid4().hex
        data = message(
            publish_method(self._number, exchange, routing_key),
            self._number,
            self._frame_max,
            body,
            content_type,
            message_id,
            headers,
        )
        # Numbered and written in one step, with no await between: the broker numbers
        # publishes in the order it reads them.
        channel.delivery_tag = tag = channel.delivery_tag + 1
        # A plain future, not one of the channel's (create_future: three callbacks more a
        # message); _reject answers it when the channel closes, as the channel would.
        confirmation = self._loop.create_future()
        self._confirmations[tag] = confirmation
        self._message_tags[message_id] = tag
        self._write(data)
        try:
            async with asyncio.timeout(timeout):
                await confirmation
        finally:
            if self._message_tags.get(message_id) == tag:
                del self._message_tags[message_id]

    def _reject(self, closing: asyncio.Future[object]) -> None:
        # The channel closed (the broker closed it, or the connection went): every publish
        # still unanswered fails with the reason, as the channel fails its own futures.
        if closing.cancelled():
            reason: BaseException = aiormq.exceptions.ChannelClosed(None, "cancelled")
        else:
            reason = closing.exception() or aiormq.exceptions.ChannelClosed(None, None)
        for confirmation in list(self._confirmations.values()):
            # A Returning stands in for a returned message until its ack: no one awaits it.
            if not confirmation.done() and not isinstance(confirmation, Returning):
                confirmation.set_exception(reason)

    def _write(self, data: bytes) -> None:
        if not self._batch:
            self._loop.call_soon(self._flush)
        self._batch.append(data)

    def _flush(self) -> None:
        # Not any publisher's own step: a publish cancelled meanwhile leaves the others' written.
        batch = ChannelFrame(payload=b"".join(self._batch), should_close=False)
        self._batch.clear()
        if self._channel.is_closed:
            return  # nothing more on a closed channel; _reject answers the publishes
        if not self._putting:
            try:
                self._writes.put_nowait(batch)
                return
            except asyncio.QueueFull:
                pass
        self._backlog.append(batch)
        if not self._putting:
            # The channel's task (its store holds it): closing the channel cancels it.
            self._putting = True
            self._channel.create_task(self._put_backlog())

    async def _put_backlog(self) -> None:
        try:
            while self._backlog and not self._channel.is_closed:
                await self._writes.put(self._backlog[0])
                self._backlog.popleft()
        finally:
            # Emptied, or cancelled with the channel closed: nothing left to write either way.
            self._backlog.clear()
            self._putting = False
