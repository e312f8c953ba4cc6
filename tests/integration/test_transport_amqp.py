"""The AMQP transport against the RabbitMQ on this machine: the outcome table, per-key order,
re-push, and the broker lost mid-run (docs/transports.md, "AMQP (RabbitMQ)").

Each test declares an exchange and a queue of its own, and deletes them."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import urlsplit

import aio_pika
import pytest
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage, AbstractQueue

from interlink.clock import FakeClock
from interlink.errors import TransportError
from interlink.service import Hub
from interlink.transports.amqp import AmqpTransport
from interlink.transports.amqp_frames import Publisher
from interlink.transports.base import Request
from tests.brokers import (
    FLOW,
    Relay,
    Silent,
    broker_hub,
    free_port,
    lose_and_recover,
    reachable,
    unique,
)
from tests.conftest import delivery_of, pay, submit

URL_ENV = "INTERLINK_TEST_AMQP_URL"
LEDGER_ENV = "TEST_LEDGER_AMQP"


class Broker:
    """A fresh direct exchange and a queue, on a connection of the test's own."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.exchange_name = unique("interlink-test")
        self.queue_name = unique("interlink-test")

    async def open(self) -> Broker:
        self.connection = await aio_pika.connect(self.url)
        self.channel = await self.connection.channel()
        self.exchange: AbstractExchange = await self.channel.declare_exchange(
            self.exchange_name, aio_pika.ExchangeType.DIRECT, auto_delete=False
        )
        self.queue: AbstractQueue = await self.channel.declare_queue(self.queue_name, durable=True)
        return self

    async def bind(self, routing_key: str) -> None:
        await self.queue.bind(self.exchange, routing_key)

    async def messages(self) -> list[AbstractIncomingMessage]:
        """Everything in the queue now, in queue order."""
        found = []
        while (message := await self.queue.get(no_ack=True, fail=False)) is not None:
            found.append(message)
        return found

    async def close(self) -> None:
        await self.queue.delete(if_unused=False, if_empty=False)
        await self.exchange.delete()
        await self.connection.close()


@pytest.fixture
async def broker() -> AsyncIterator[Broker]:
    opened = await Broker(reachable(URL_ENV, "amqp://guest:guest@127.0.0.1:5672/", 5672)).open()
    yield opened
    await opened.close()


@pytest.fixture
async def make(
    tmp_path: Path, clock: FakeClock, broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Callable[[str], Hub]]:
    """A hub whose ledger is reached over AMQP at ``url``, through the test's exchange."""
    made: list[Hub] = []

    def hub(url: str) -> Hub:
        monkeypatch.setenv(LEDGER_ENV, url)
        block = (
            f"{{url_env: {LEDGER_ENV}, exchange: {broker.exchange_name}, "
            f'routing_key: "pay.{{flow}}"}}'
        )
        made.append(broker_hub(tmp_path, clock, "amqp", block))
        return made[-1]

    yield hub
    for h in made:
        await h.close()


ROUTE = f"pay.{FLOW}"


def revisions(messages: list[AbstractIncomingMessage]) -> list[tuple[object, object]]:
    return [(m.headers.get("Interlink-Key"), m.headers.get("Interlink-Revision")) for m in messages]


async def test_a_confirmed_message_is_delivered_with_key_and_message_id(
    make: Callable[[str], Hub], broker: Broker
) -> None:
    await broker.bind(ROUTE)
    hub = make(broker.url)
    [doc] = await submit(hub, pay("A1", amount="12.50"))

    await hub.engine.drain()

    d = delivery_of(hub, doc["id"], FLOW)
    assert (d.status, d.attempts) == ("delivered", 1)
    assert d.attempt_log[0].status_code == 200
    [message] = await broker.messages()
    assert json.loads(message.body)["order_no"] == "A1"
    assert json.loads(message.body)["amount"] == "12.50"
    assert message.message_id == doc["id"]  # the Idempotency-Key
    assert message.headers["Interlink-Key"] == "A1"
    assert message.headers["Idempotency-Key"] == doc["id"]
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}", message.headers["traceparent"])
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.content_type == "application/json"
    assert (message.exchange, message.routing_key) == (broker.exchange_name, ROUTE)


async def test_unroutable_is_dead_and_re_push_sends_it_in_key_order(
    make: Callable[[str], Hub], broker: Broker, clock: FakeClock
) -> None:
    hub = make(broker.url)  # nothing bound yet: the exchange returns the message
    [rev1] = await submit(hub, pay("K1"))
    await hub.engine.drain()
    dead = delivery_of(hub, rev1["id"], FLOW)
    assert dead.state == "dead: rejected"
    assert dead.last_error is not None and "312 NO_ROUTE" in dead.last_error
    [rev2] = await submit(hub, pay("K1", amount="-10.00", kind="refund"))
    await hub.engine.drain()
    assert delivery_of(hub, rev2["id"], FLOW).state == "held: blocked"

    await broker.bind(ROUTE)
    clock.advance(60)
    hub.repush_one(dead.id, actor="duty")
    await hub.engine.drain()

    assert delivery_of(hub, rev1["id"], FLOW).status == "delivered"
    assert delivery_of(hub, rev2["id"], FLOW).status == "delivered"
    messages = await broker.messages()
    assert revisions(messages) == [("K1", "1"), ("K1", "2")]
    assert [m.message_id for m in messages] == [rev1["id"], rev2["id"]]


async def test_a_nacked_message_is_dead(make: Callable[[str], Hub], broker: Broker) -> None:
    # A queue that is full and refuses more: the broker answers basic.nack.
    full = await broker.channel.declare_queue(
        unique("interlink-test"),
        auto_delete=True,
        arguments={"x-max-length": 0, "x-overflow": "reject-publish"},
    )
    await full.bind(broker.exchange, ROUTE)
    hub = make(broker.url)
    [doc] = await submit(hub, pay("A1"))

    await hub.engine.drain()

    d = delivery_of(hub, doc["id"], FLOW)
    assert d.state == "dead: rejected"
    assert d.attempt_log[0].status_code == 422
    assert d.last_error is not None and "basic.nack" in d.last_error
    await full.delete(if_unused=False, if_empty=False)


async def test_a_broker_that_refuses_connections_is_unavailable_and_retried(
    make: Callable[[str], Hub], broker: Broker, clock: FakeClock
) -> None:
    parts = urlsplit(broker.url)
    hub = make(broker.url.replace(parts.netloc, f"guest:guest@127.0.0.1:{free_port()}"))
    [doc] = await submit(hub, pay("A1"))

    await hub.engine.drain()

    d = delivery_of(hub, doc["id"], FLOW)
    assert (d.status, d.failures, d.last_error) == ("pending", 1, "connection refused")
    assert d.attempt_log[0].outcome == "unavailable"
    assert d.next_at is not None and d.next_at > clock.now()  # a retry, not the end
    clock.advance(5)
    await hub.engine.drain()
    again = delivery_of(hub, doc["id"], FLOW)
    assert [a.outcome for a in again.attempt_log] == ["unavailable", "unavailable"]
    # The second failure in a row opens the circuit (circuit_threshold: 2): held, not dead.
    assert again.state == "held: downstream_down"
    assert hub.status()["systems"]["ledger"]["circuit"] == "open"


async def test_the_broker_lost_mid_run_holds_then_delivers_in_order_after_recovery(
    make: Callable[[str], Hub], broker: Broker, clock: FakeClock
) -> None:
    await broker.bind(ROUTE)
    parts = urlsplit(broker.url)
    relay = await Relay(parts.hostname or "127.0.0.1", parts.port or 5672).start()
    hub = make(broker.url.replace(parts.netloc, f"guest:guest@127.0.0.1:{relay.port}"))
    [first] = await submit(hub, pay("K1", amount="1.00"))
    await hub.engine.drain()
    assert delivery_of(hub, first["id"], FLOW).status == "delivered"

    later = await lose_and_recover(hub, relay, clock, broker.messages)

    messages = await broker.messages()
    by_key = [r for r in revisions(messages) if r[0] == "K1"]
    assert by_key == [("K1", "2"), ("K1", "3")]
    assert sorted(m.message_id or "" for m in messages) == sorted(d["id"] for d in later)
    assert relay.connections >= 2  # the transport opened a new connection after the loss
    await relay.stop()


async def test_the_engine_loop_publishes_and_closes_its_connection_when_it_stops(
    make: Callable[[str], Hub], broker: Broker
) -> None:
    await broker.bind(ROUTE)
    hub = make(broker.url)
    [doc] = await submit(hub, pay("A1"))
    stop = asyncio.Event()
    running = asyncio.create_task(hub.engine.run(stop))

    async with broker.queue.iterator() as consumed:
        message = await asyncio.wait_for(anext(aiter(consumed)), timeout=10)
        await message.ack()
    assert message.message_id == doc["id"]
    transport = hub.engine.dispatcher._transport_for(hub.topology.flows[FLOW])
    assert isinstance(transport, AmqpTransport)
    stop.set()
    await running

    assert transport._connection is None  # closed with the loop, not left to the process
    assert hub.engine.dispatcher._transports == {}


async def test_a_burst_of_sends_to_a_hanging_broker_makes_one_connect_attempt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    silent = await Silent().start()
    monkeypatch.setenv(LEDGER_ENV, f"amqp://guest:guest@127.0.0.1:{silent.port}/")
    transport = AmqpTransport("ledger", LEDGER_ENV)
    burst = [Request("amqp:/q", b"{}", {"Idempotency-Key": f"D{i}"}, timeout=0.3) for i in range(5)]

    failed = await asyncio.gather(
        *(transport.send(request) for request in burst), return_exceptions=True
    )

    # The sends that waited for the one attempt share its failure instead of each waiting out
    # a connect of its own in turn (5 x 0.3 s).
    assert {type(f) for f in failed} == {TransportError}
    assert {f.kind for f in failed if isinstance(f, TransportError)} == {"timeout"}
    assert silent.connections == 1
    await transport.close()
    await silent.stop()


async def test_one_document_on_two_routes_gets_each_its_own_answer(
    broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One document on two flows into one system: the same message_id twice, one routable.
    await broker.bind("bound")
    monkeypatch.setenv(LEDGER_ENV, broker.url)
    transport = AmqpTransport("ledger", LEDGER_ENV)
    headers = {"Idempotency-Key": "doc-1"}
    routed = Request(f"amqp:{broker.exchange_name}/bound", b"{}", headers, timeout=5)
    lost = Request(f"amqp:{broker.exchange_name}/unbound", b"{}", headers, timeout=5)

    answers = await asyncio.gather(transport.send(lost), transport.send(routed))

    assert [a.status for a in answers] == [404, 200]
    assert [m.message_id for m in await broker.messages()] == ["doc-1"]
    await transport.close()


async def test_a_return_among_many_in_flight_is_404_for_that_one_alone(
    broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    await broker.bind("bound")
    monkeypatch.setenv(LEDGER_ENV, broker.url)
    transport = AmqpTransport("ledger", LEDGER_ENV)
    exchange = broker.exchange_name
    lost = 137
    requests = [
        Request(
            f"amqp:{exchange}/{'unbound' if i == lost else 'bound'}",
            json.dumps({"n": i}).encode(),
            {"Idempotency-Key": f"doc-{i}"},
            timeout=10,
        )
        for i in range(300)
    ]

    answers = await asyncio.gather(*(transport.send(r) for r in requests))

    assert transport._publisher is not None  # the frames of our own, not basic_publish
    assert [i for i, a in enumerate(answers) if a.status != 200] == [lost]
    assert answers[lost].status == 404 and b"312 NO_ROUTE" in answers[lost].body
    messages = await broker.messages()
    assert [m.message_id for m in messages] == [f"doc-{i}" for i in range(300) if i != lost]
    await transport.close()


async def test_the_broker_takes_bodies_over_a_frame_and_non_ascii_headers(
    broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    await broker.bind("bound")
    monkeypatch.setenv(LEDGER_ENV, broker.url)
    transport = AmqpTransport("ledger", LEDGER_ENV)
    big = json.dumps({"note": "ü" * 200_000}).encode()  # over RabbitMQ's 128 KiB frame_max
    headers = {"Idempotency-Key": "doc-ü", "Interlink-Key": "Zahlung-Ö-42 ✓"}
    url = f"amqp:{broker.exchange_name}/bound"

    answers = [await transport.send(Request(url, body, headers, timeout=10)) for body in (big, b"")]

    assert [a.status for a in answers] == [200, 200]
    messages = await broker.messages()
    assert [m.body for m in messages] == [big, b""]
    assert messages[0].headers == headers and messages[0].message_id == "doc-ü"
    await transport.close()


async def test_without_its_own_frames_it_publishes_with_basic_publish_to_the_same_answers(
    broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # aiormq's internals not the ones the lean publisher knows: it declines to attach.
    monkeypatch.setattr(Publisher, "attach", classmethod(lambda cls, channel: None))
    await broker.bind("bound")
    monkeypatch.setenv(LEDGER_ENV, broker.url)
    transport = AmqpTransport("ledger", LEDGER_ENV)
    url = f"amqp:{broker.exchange_name}"
    routed = Request(f"{url}/bound", b"{}", {"Idempotency-Key": "doc-1", "X-Ü": "ö"}, timeout=5)
    lost = Request(f"{url}/unbound", b"{}", {"Idempotency-Key": "doc-2"}, timeout=5)

    answers = await asyncio.gather(transport.send(routed), transport.send(lost))

    assert transport._raw is not None and transport._publisher is None
    assert [a.status for a in answers] == [200, 404]
    [message] = await broker.messages()
    assert (message.message_id, message.headers) == ("doc-1", routed.headers)
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    await transport.close()


async def test_no_such_exchange_is_404_and_access_refused_403_then_the_next_send_delivers(
    broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each closes the channel: the transport opens another for the next send.
    await broker.bind("bound")
    internal = await broker.channel.declare_exchange(unique("interlink-test"), internal=True)
    monkeypatch.setenv(LEDGER_ENV, broker.url)
    transport = AmqpTransport("ledger", LEDGER_ENV)
    headers = {"Idempotency-Key": "doc-1"}
    missing = Request(f"amqp:{unique('no-such')}/bound", b"{}", headers, timeout=5)
    refused = Request(f"amqp:{internal.name}/bound", b"{}", headers, timeout=5)
    routed = Request(f"amqp:{broker.exchange_name}/bound", b"{}", headers, timeout=5)

    answers = [await transport.send(r) for r in (missing, refused, routed)]

    assert [a.status for a in answers] == [404, 403, 200]
    assert b"NOT_FOUND - no exchange" in answers[0].body
    assert b"ACCESS_REFUSED" in answers[1].body
    assert [m.message_id for m in await broker.messages()] == ["doc-1"]
    await transport.close()
    await internal.delete()
