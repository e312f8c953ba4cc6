"""Readiness's "downstream reachable" for systems behind a broker, against the real RabbitMQ
and NATS on this machine: passed when the broker lets us in and has what the flow publishes
to; failed, saying why, when the variable is unset, the login is refused, nothing listens,
or the exchange, queue or stream is missing. Nothing is ever published."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import nats
import pytest

from interlink.clock import FakeClock
from interlink.features.readiness.checklist import FAILED, PASSED, check
from interlink.service import Hub
from tests.brokers import FLOW, broker_hub, free_port, reachable, unique

AMQP_ENV = "INTERLINK_TEST_AMQP_URL"
AMQP_DEFAULT = "amqp://guest:guest@127.0.0.1:5672/"
NATS_ENV = "INTERLINK_TEST_NATS_URL"
NATS_DEFAULT = "nats://127.0.0.1:4222"
REACHABLE = "downstream reachable"


async def reachable_item(hub: Hub) -> dict[str, Any]:
    [found] = (await check(hub, FLOW))["flows"]
    [item] = [i for i in found["items"] if i["item"] == REACHABLE]
    return dict(item)


@pytest.fixture
async def amqp_url() -> str:
    return reachable(AMQP_ENV, AMQP_DEFAULT, 5672)


@pytest.fixture
async def exchange(amqp_url: str) -> AsyncIterator[str]:
    name = unique("interlink-ready")
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        made = await channel.declare_exchange(name, aio_pika.ExchangeType.DIRECT, auto_delete=False)
        yield name
        await made.delete()
    finally:
        await connection.close()


def amqp_hub(tmp_path: Path, exchange: str) -> Hub:
    broker = f"{{url_env: LEDGER_AMQP_URL, exchange: {exchange}}}"
    return broker_hub(tmp_path, FakeClock(), "amqp", broker)


async def test_an_amqp_target_passes_when_its_exchange_exists(
    tmp_path: Path, exchange: str, amqp_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEDGER_AMQP_URL", amqp_url)
    hub = amqp_hub(tmp_path, exchange)
    try:
        item = await reachable_item(hub)
        assert item["status"] == PASSED, item
        assert (
            item["detail"] == f"ledger: logged in; exchange {exchange!r} exists (nothing published)"
        )
    finally:
        await hub.close()


async def test_an_amqp_target_fails_with_the_reason(
    tmp_path: Path, amqp_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = unique("interlink-nothing")
    hub = amqp_hub(tmp_path, missing)
    try:
        monkeypatch.delenv("LEDGER_AMQP_URL", raising=False)
        item = await reachable_item(hub)
        assert (item["status"], item["detail"]) == (
            FAILED,
            "ledger: LEDGER_AMQP_URL is not set (the broker URL)",
        )
        assert "broker is up" in item["next"]
        assert "that LEDGER_AMQP_URL is set where serve and worker run" in item["next"]

        monkeypatch.setenv("LEDGER_AMQP_URL", amqp_url)
        item = await reachable_item(hub)
        assert (item["status"], item["detail"]) == (
            FAILED,
            f"ledger: logged in, but the broker has no exchange {missing!r}",
        )

        monkeypatch.setenv("LEDGER_AMQP_URL", amqp_url.replace("guest:guest", "guest:wrong"))
        item = await reachable_item(hub)
        assert item["status"] == FAILED
        assert "refused us (user, password or permissions)" in item["detail"]
        assert "wrong" not in item["detail"]  # the password is never shown

        monkeypatch.setenv("LEDGER_AMQP_URL", f"amqp://guest:guest@127.0.0.1:{free_port()}/")
        item = await reachable_item(hub)
        assert item["status"] == FAILED
        assert item["detail"].startswith("ledger: cannot connect"), item
    finally:
        await hub.close()


async def test_an_amqp_target_on_the_default_exchange_needs_its_queue(
    tmp_path: Path, amqp_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEDGER_AMQP_URL", amqp_url)
    queue = unique("interlink-ready-queue")
    broker = f"{{url_env: LEDGER_AMQP_URL, routing_key: {queue}}}"
    hub = broker_hub(tmp_path, FakeClock(), "amqp", broker)
    connection = await aio_pika.connect(amqp_url)
    try:
        item = await reachable_item(hub)
        assert (item["status"], item["detail"]) == (
            FAILED,
            f"ledger: logged in, but the broker has no queue {queue!r}",
        )
        channel = await connection.channel()
        made = await channel.declare_queue(queue, auto_delete=False)
        try:
            item = await reachable_item(hub)
            assert item["status"] == PASSED, item
            assert f"queue {queue!r} exists (default exchange)" in item["detail"]
            assert (
                await channel.declare_queue(queue, passive=True)
            ).declaration_result.message_count == 0
        finally:
            await made.delete()
    finally:
        await connection.close()
        await hub.close()


async def test_a_nats_target_needs_a_stream_for_its_subject(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = reachable(NATS_ENV, NATS_DEFAULT, 4222)
    monkeypatch.setenv("LEDGER_NATS_URL", url)
    prefix = unique("ready").replace("-", "_")
    stream = prefix.upper()
    broker = f"{{url_env: LEDGER_NATS_URL, subject: '{prefix}.{{flow}}', stream: {stream}}}"
    hub = broker_hub(tmp_path, FakeClock(), "nats", broker)
    client = await nats.connect(url)
    js = client.jetstream()
    subject = f"{prefix}.{FLOW}"
    try:
        item = await reachable_item(hub)
        assert (item["status"], item["detail"]) == (
            FAILED,
            f"ledger: logged in, but no JetStream stream takes subject {subject!r}",
        )
        other = f"{stream}_OTHER"
        await js.add_stream(name=other, subjects=[f"{prefix}.>"])
        try:
            item = await reachable_item(hub)
            assert (item["status"], item["detail"]) == (
                FAILED,
                f"ledger: subject {subject!r} goes to stream {other!r}, not {stream!r}",
            )
        finally:
            await js.delete_stream(other)
        await js.add_stream(name=stream, subjects=[f"{prefix}.>"])
        try:
            item = await reachable_item(hub)
            assert item["status"] == PASSED, item
            assert f"subject {subject!r} goes to stream {stream!r}" in item["detail"]
            assert (await js.stream_info(stream)).state.messages == 0  # nothing published
        finally:
            await js.delete_stream(stream)

        monkeypatch.setenv("LEDGER_NATS_URL", f"nats://127.0.0.1:{free_port()}")
        item = await reachable_item(hub)
        assert item["status"] == FAILED
        assert item["detail"].startswith("ledger: cannot connect"), item
    finally:
        await client.close()
        await hub.close()
