"""The AMQP transport's hand-encoded Basic.Publish frames, read back by pamqp: an independent
implementation of the same wire format (AMQP 0-9-1, section 4.2)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from types import SimpleNamespace
from typing import Any, cast

import aiormq
import pytest
from aiormq.channel import Returning
from pamqp import commands, frame
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

from interlink.transports import amqp_frames

FRAME_MAX = 4096  # the smallest a broker may offer, so bodies over it stay small
STEP = FRAME_MAX - 8  # a body frame's room: the frame less its header (7) and end (1)
CHANNEL = 3
HEADERS = {
    "Idempotency-Key": "dlv-0001",
    "Interlink-Key": "Zahlung-Ö-42",
    "X-Note": "déjà vu ✓ 日本",
    "Ключ": "значение",
    "Empty": "",
}


def decode(data: bytes) -> list[tuple[int, object]]:
    """Every frame in ``data``, as pamqp reads them: (channel, frame)."""
    frames = []
    while data:
        used, channel, value = frame.unmarshal(data)
        assert 0 < used <= FRAME_MAX
        frames.append((channel, value))
        data = data[used:]
    return frames


def encoded(body: bytes, message_id: str = "dlv-0001") -> bytes:
    method = amqp_frames.publish_method(CHANNEL, "pay.direct", "trading.to-ledger/po")
    return amqp_frames.message(
        method, CHANNEL, FRAME_MAX, body, "application/json", message_id, HEADERS
    )


@pytest.mark.parametrize(
    "size", [0, 1, STEP - 1, STEP, STEP + 1, 2 * STEP, 3 * STEP + 5], ids=lambda n: f"{n}B"
)
def test_a_message_decodes_to_publish_header_and_its_body_in_frames(size: int) -> None:
    body = bytes(i % 251 for i in range(size))

    (_, method), (_, header), *bodies = decode(encoded(body))

    assert isinstance(method, commands.Basic.Publish)
    assert (method.exchange, method.routing_key) == ("pay.direct", "trading.to-ledger/po")
    assert (method.mandatory, method.immediate) == (True, False)
    assert isinstance(header, ContentHeader)
    assert header.body_size == size
    assert all(isinstance(b, ContentBody) for _, b in bodies)
    assert len(bodies) == -(-size // STEP)  # none for an empty body
    assert b"".join(b.value for _, b in bodies if isinstance(b, ContentBody)) == body


def test_every_frame_is_on_the_channel_given() -> None:
    assert {channel for channel, _ in decode(encoded(b"x" * (2 * STEP)))} == {CHANNEL}


def test_the_properties_are_content_type_headers_persistent_and_message_id() -> None:
    (_, _), (_, header), _ = decode(encoded(b'{"a": 1}', message_id="Ä-id"))

    assert isinstance(header, ContentHeader)
    properties = header.properties
    assert properties.content_type == "application/json"
    assert properties.delivery_mode == 2
    assert properties.message_id == "Ä-id"
    assert properties.headers == HEADERS  # non-ASCII keys and values, an empty one
    assert properties.correlation_id is None and properties.expiration is None


def test_the_frames_are_byte_for_byte_pamqps() -> None:
    body = b"y" * (STEP + 10)
    # pamqp writes a table's fields sorted by name; their order carries no meaning.
    headers = dict(sorted(HEADERS.items()))
    properties = commands.Basic.Properties(
        content_type="application/json", headers=headers, delivery_mode=2, message_id="m-1"
    )
    theirs = b"".join(
        frame.marshal(f, CHANNEL)
        for f in (
            commands.Basic.Publish(exchange="ex", routing_key="rk", mandatory=True),
            ContentHeader(0, len(body), properties),
            ContentBody(body[:STEP]),
            ContentBody(body[STEP:]),
        )
    )
    method = amqp_frames.publish_method(CHANNEL, "ex", "rk")

    ours = amqp_frames.message(method, CHANNEL, FRAME_MAX, body, "application/json", "m-1", headers)

    assert ours == theirs


@pytest.mark.parametrize("where", ["exchange", "routing_key"])
def test_a_name_over_255_bytes_is_refused(where: str) -> None:
    names = {"exchange": "ex", "routing_key": "rk", where: "é" * 128}  # 256 bytes
    with pytest.raises(ValueError, match="255 bytes"):
        amqp_frames.publish_method(CHANNEL, names["exchange"], names["routing_key"])


class FakeChannel:
    """What Publisher uses of an aiormq channel; the test plays the writer and the broker."""

    def __init__(self, queue_size: int = 0) -> None:
        self.number = CHANNEL
        self.connection = SimpleNamespace(connection_tune=SimpleNamespace(frame_max=FRAME_MAX))
        self.publisher_confirms = True
        self.delivery_tag = 0
        self.confirmations: dict[int, asyncio.Future[object]] = {}
        self.message_id_delivery_tag: dict[str, int] = {}
        self.write_queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=queue_size)
        self.closing: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.tasks: list[asyncio.Task[None]] = []

    @property
    def is_closed(self) -> bool:
        return self.closing.done()

    def create_task(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        self.tasks.append(asyncio.ensure_future(coro))
        return self.tasks[-1]

    def publisher(self) -> amqp_frames.Publisher:
        publisher = amqp_frames.Publisher.attach(cast(aiormq.Channel, self))
        assert publisher is not None
        return publisher

    def written(self) -> list[str]:
        """The message_ids of the messages written so far, in the order written."""
        ids = []
        while not self.write_queue.empty():
            for _, value in decode(self.write_queue.get_nowait().payload):
                if isinstance(value, ContentHeader):
                    ids.append(value.properties.message_id)
        return ids


async def publish(publisher: amqp_frames.Publisher, message_id: str) -> None:
    await publisher.publish("ex", "rk", b"{}", "application/json", message_id, {}, 10)


async def turn() -> None:
    for _ in range(3):  # a publish, its flush, and what the flush started
        await asyncio.sleep(0)


async def test_one_turns_publishes_are_one_write_numbered_in_order() -> None:
    channel = FakeChannel()
    publisher = channel.publisher()

    sends = [asyncio.create_task(publish(publisher, f"m{i}")) for i in range(3)]
    await turn()

    assert channel.write_queue.qsize() == 1
    assert channel.written() == ["m0", "m1", "m2"]
    assert channel.message_id_delivery_tag == {"m0": 1, "m1": 2, "m2": 3}
    channel.confirmations.pop(2).set_result(commands.Basic.Ack(delivery_tag=2))
    await turn()
    assert [s.done() for s in sends] == [False, True, False]
    assert channel.message_id_delivery_tag == {"m0": 1, "m2": 3}  # the answered one forgotten
    for tag in (1, 3):
        channel.confirmations.pop(tag).set_result(commands.Basic.Ack(delivery_tag=tag))
    await asyncio.gather(*sends)


async def test_a_full_write_queue_keeps_later_writes_behind_the_waiting_ones() -> None:
    channel = FakeChannel(queue_size=1)
    publisher = channel.publisher()
    sends = []
    for i in range(3):  # each in a turn of its own: three writes, room for one
        sends.append(asyncio.create_task(publish(publisher, f"m{i}")))
        await turn()
    sends.append(asyncio.create_task(publish(publisher, "m3")))
    await asyncio.sleep(0)  # published; its write comes next, before the waiting ones move

    written = channel.written()  # room again, for the waiting ones, not the newest
    while len(written) < 4:
        await turn()
        written += channel.written()

    assert written == ["m0", "m1", "m2", "m3"]
    for tag, confirmation in channel.confirmations.items():
        confirmation.set_result(commands.Basic.Ack(delivery_tag=tag))
    await asyncio.gather(*sends)


async def test_a_closed_channel_fails_the_unanswered_with_its_reason() -> None:
    channel = FakeChannel()
    publisher = channel.publisher()
    sends = [asyncio.create_task(publish(publisher, f"m{i}")) for i in range(3)]
    await turn()
    channel.confirmations.pop(1).set_result(commands.Basic.Ack(delivery_tag=1))
    returned = channel.confirmations[2] = Returning()  # as aiormq marks a returned message
    reason = aiormq.exceptions.ChannelNotFoundEntity("NOT_FOUND - no exchange 'ex'")

    channel.closing.set_exception(reason)
    answers = await asyncio.gather(sends[0], sends[2], return_exceptions=True)

    assert answers == [None, reason]
    assert not returned.done()  # no one awaits it: left alone, not failed unretrieved
    sends[1].cancel()  # its own future, replaced by the Returning, is the test's to end
    with pytest.raises(asyncio.CancelledError):
        await sends[1]


async def test_nothing_is_written_on_a_closed_channel() -> None:
    channel = FakeChannel()
    publisher = channel.publisher()
    send = asyncio.create_task(publish(publisher, "m0"))
    await asyncio.sleep(0)  # published, its write not yet flushed
    channel.closing.set_exception(aiormq.exceptions.ChannelClosed(None, None))

    with pytest.raises(aiormq.exceptions.ChannelClosed):
        await send

    assert channel.written() == []
    with pytest.raises(aiormq.exceptions.ChannelInvalidStateError):
        await publish(publisher, "m1")


async def test_no_answer_in_time_is_a_timeout_and_the_late_answer_finds_it_given_up() -> None:
    channel = FakeChannel()
    publisher = channel.publisher()

    with pytest.raises(TimeoutError):
        await publisher.publish("ex", "rk", b"{}", "application/json", "m0", {}, 0)

    assert channel.written() == ["m0"]
    assert channel.message_id_delivery_tag == {}
    assert channel.confirmations[1].cancelled()  # aiormq ignores its ack, as for basic_publish


@pytest.mark.parametrize("missing", ["confirmations", "message_id_delivery_tag", "write_queue"])
async def test_a_channel_without_the_internals_it_knows_gets_no_publisher(missing: str) -> None:
    channel = FakeChannel()
    delattr(channel, missing)

    assert amqp_frames.Publisher.attach(cast(aiormq.Channel, channel)) is None


async def test_a_channel_without_confirms_gets_no_publisher() -> None:
    channel = FakeChannel()
    channel.publisher_confirms = False

    assert amqp_frames.Publisher.attach(cast(aiormq.Channel, channel)) is None
