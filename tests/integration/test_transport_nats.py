"""The NATS JetStream transport against the NATS server on this machine: the outcome table,
JetStream's de-duplication by message id, per-key order, re-push, and the server lost mid-run
(docs/transports.md, "NATS JetStream").

Each test publishes under a subject prefix of its own and deletes the stream it made."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import urlsplit

import nats
import pytest
from nats.js.api import RawStreamMsg

from interlink.clock import FakeClock
from interlink.config import NatsSettings
from interlink.errors import TransportError
from interlink.service import Hub
from interlink.transports.base import Request
from interlink.transports.jetstream import NatsTransport
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

URL_ENV = "INTERLINK_TEST_NATS_URL"
LEDGER_ENV = "TEST_LEDGER_NATS"


class Server:
    """A connection of the test's own, and the stream it may make for its subjects."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.prefix = unique("itest").replace("-", "_")
        self.stream = self.prefix.upper()
        self.made = False

    async def open(self) -> Server:
        self.client = await nats.connect(self.url)
        self.js = self.client.jetstream()
        return self

    async def make_stream(self) -> None:
        await self.js.add_stream(name=self.stream, subjects=[f"{self.prefix}.>"])
        self.made = True

    async def messages(self) -> list[RawStreamMsg]:
        """The stream's messages, in order."""
        info = await self.js.stream_info(self.stream)
        if not info.state.messages:
            return []
        first, last = info.state.first_seq, info.state.last_seq
        return [await self.js.get_msg(self.stream, seq) for seq in range(first, last + 1)]

    async def close(self) -> None:
        if self.made:
            await self.js.delete_stream(self.stream)
        await self.client.close()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    opened = await Server(reachable(URL_ENV, "nats://127.0.0.1:4222", 4222)).open()
    yield opened
    await opened.close()


@pytest.fixture
async def make(
    tmp_path: Path, clock: FakeClock, server: Server, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Callable[..., Hub]]:
    """A hub whose ledger is reached over NATS at ``url``, on the test's subjects."""
    made: list[Hub] = []

    def hub(url: str, stream: str | None = None) -> Hub:
        monkeypatch.setenv(LEDGER_ENV, url)
        expected = f", stream: {stream}" if stream else ""
        block = f'{{url_env: {LEDGER_ENV}, subject: "{server.prefix}.{{flow}}"{expected}}}'
        made.append(broker_hub(tmp_path, clock, "nats", block))
        return made[-1]

    yield hub
    for h in made:
        await h.close()


def revisions(messages: list[RawStreamMsg]) -> list[tuple[str | None, str | None]]:
    return [
        ((m.headers or {}).get("Interlink-Key"), (m.headers or {}).get("Interlink-Revision"))
        for m in messages
    ]


def elsewhere(url: str, port: int) -> str:
    return url.replace(urlsplit(url).netloc, f"127.0.0.1:{port}")


async def test_an_acked_message_is_delivered_and_a_re_push_is_a_duplicate(
    make: Callable[..., Hub], server: Server, clock: FakeClock
) -> None:
    await server.make_stream()
    hub = make(server.url)
    [doc] = await submit(hub, pay("A1", amount="12.50"))

    await hub.engine.drain()

    d = delivery_of(hub, doc["id"], FLOW)
    assert (d.status, d.attempts) == ("delivered", 1)
    assert d.attempt_log[0].status_code == 200
    assert json.loads(d.attempt_log[0].response or "") == {
        "stream": server.stream,
        "seq": 1,
        "duplicate": False,
    }
    [message] = await server.messages()
    assert message.subject == f"{server.prefix}.{FLOW}"
    assert json.loads(message.data or b"")["amount"] == "12.50"
    headers = message.headers or {}
    assert headers["Nats-Msg-Id"] == doc["id"]  # the Idempotency-Key: JetStream de-duplicates
    assert headers["Interlink-Key"] == "A1"
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}", headers["traceparent"])

    clock.advance(60)
    hub.repush_one(d.id, actor="duty")
    await hub.engine.drain()
    again = delivery_of(hub, doc["id"], FLOW)
    assert again.status == "delivered"
    assert [a.outcome for a in again.attempt_log] == ["delivered", "duplicate"]
    assert len(await server.messages()) == 1  # the stream kept one copy


async def test_no_stream_is_dead_and_re_push_sends_it_in_key_order(
    make: Callable[..., Hub], server: Server, clock: FakeClock
) -> None:
    hub = make(server.url)  # no stream takes the subject yet
    [rev1] = await submit(hub, pay("K1"))
    await hub.engine.drain()
    dead = delivery_of(hub, rev1["id"], FLOW)
    assert dead.state == "dead: rejected"
    assert dead.last_error is not None and "no responders" in dead.last_error
    [rev2] = await submit(hub, pay("K1", amount="-10.00", kind="refund"))
    await hub.engine.drain()
    assert delivery_of(hub, rev2["id"], FLOW).state == "held: blocked"

    await server.make_stream()
    clock.advance(60)
    hub.repush_one(dead.id, actor="duty")
    await hub.engine.drain()

    assert delivery_of(hub, rev1["id"], FLOW).status == "delivered"
    assert delivery_of(hub, rev2["id"], FLOW).status == "delivered"
    messages = await server.messages()
    assert revisions(messages) == [("K1", "1"), ("K1", "2")]


async def test_an_ack_from_another_stream_than_the_expected_one_is_refused(
    make: Callable[..., Hub], server: Server
) -> None:
    await server.make_stream()
    hub = make(server.url, stream="SOME_OTHER_STREAM")
    [doc] = await submit(hub, pay("A1"))

    await hub.engine.drain()

    d = delivery_of(hub, doc["id"], FLOW)
    assert d.state == "dead: rejected"
    assert d.attempt_log[0].status_code == 400  # JetStream's own code
    assert d.last_error is not None and "expected stream does not match" in d.last_error
    assert await server.messages() == []  # JetStream stored nothing


async def test_a_server_that_refuses_connections_is_unavailable_and_retried(
    make: Callable[..., Hub], server: Server, clock: FakeClock
) -> None:
    hub = make(elsewhere(server.url, free_port()))
    [doc] = await submit(hub, pay("A1"))

    await hub.engine.drain()

    d = delivery_of(hub, doc["id"], FLOW)
    assert (d.status, d.failures, d.last_error) == ("pending", 1, "connection refused")
    assert d.next_at is not None and d.next_at > clock.now()  # a retry, not the end
    clock.advance(5)
    await hub.engine.drain()
    again = delivery_of(hub, doc["id"], FLOW)
    assert [a.outcome for a in again.attempt_log] == ["unavailable", "unavailable"]
    assert again.state == "held: downstream_down"  # circuit_threshold: 2


async def test_the_server_lost_mid_run_holds_then_delivers_in_order_after_recovery(
    make: Callable[..., Hub], server: Server, clock: FakeClock
) -> None:
    await server.make_stream()
    parts = urlsplit(server.url)
    relay = await Relay(parts.hostname or "127.0.0.1", parts.port or 4222).start()
    hub = make(elsewhere(server.url, relay.port))
    [first] = await submit(hub, pay("K1", amount="1.00"))
    await hub.engine.drain()
    assert delivery_of(hub, first["id"], FLOW).status == "delivered"

    later = await lose_and_recover(hub, relay, clock, server.messages)

    messages = (await server.messages())[1:]
    assert [r for r in revisions(messages) if r[0] == "K1"] == [("K1", "2"), ("K1", "3")]
    assert sorted((m.headers or {}).get("Nats-Msg-Id", "") for m in messages) == sorted(
        d["id"] for d in later
    )
    assert relay.connections >= 2  # the transport opened a new connection after the loss
    await relay.stop()


async def test_a_burst_of_sends_to_a_hanging_server_makes_one_connect_attempt() -> None:
    silent = await Silent().start()
    transport = NatsTransport("ledger", NatsSettings(servers=[f"nats://127.0.0.1:{silent.port}"]))
    burst = [
        Request("nats:orders", b"{}", {"Idempotency-Key": f"D{i}"}, timeout=0.3) for i in range(5)
    ]

    failed = await asyncio.gather(
        *(transport.send(request) for request in burst), return_exceptions=True
    )

    assert {type(f) for f in failed} == {TransportError}
    assert {f.kind for f in failed if isinstance(f, TransportError)} == {"timeout"}
    assert silent.connections == 1  # not one per send, each waiting out its own connect
    await transport.close()
    await silent.stop()
