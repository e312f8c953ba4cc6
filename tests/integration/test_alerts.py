"""Alerts end to end: the engine's events, routed by role, as mail arriving at a real aiosmtpd
server on loopback and as a chat notification reaching a real HTTP receiver."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable, Iterator
from datetime import timedelta
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from interlink.clock import FakeClock
from interlink.features.alerts.service import RETRY, Alerter, alerts, send_test
from interlink.features.incidents.service import incidents
from interlink.intake import Item
from interlink.service import Hub
from interlink.store.queries import events
from tests.acceptance.conftest import run_cli_async
from tests.conftest import Api, pay, submit
from tests.receiver import Receiver

FLOW = "trading-treasury"

TOPOLOGY = """\
timezone: Asia/Shanghai
database: sqlite:///hub.db
systems:
  trading:
    token_env: TEST_TRADING_TOKEN
    contacts:
      - role: product
        email: trading-pm@example.test
      - role: dev
        email: trading-dev@example.test
      - role: ops
        email: trading-ops@example.test
  treasury:
    url: {treasury}
    timeout: 2s
    contacts:
      - role: ops
        email: treasury-ops@example.test
        notify: "json://127.0.0.1:CHAT_PORT/"
      - role: dev
        email: treasury-dev@example.test
documents:
  payment_order:
    key: order_no
flows:
  trading-treasury:
    from: trading
    to: treasury
    document: payment_order
    path: /payments
    retry: [5s, 30s]
    give_up_after: 1h
alerts:
  smtp:
    host: 127.0.0.1
    port: SMTP_PORT
    from: interlink@example.test
  aggregate: 5m
engine:
  circuit_threshold: 3
  batch: 2000
"""


class Mailbox:
    """Collects every message the SMTP server accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield box, controller.port
    controller.stop()


@pytest.fixture
async def chat() -> Any:
    receiver = await Receiver().start()
    yield receiver
    await receiver.stop()


@pytest.fixture
def alert_hub(make_hub: Callable[[str], Hub], mailbox: tuple[Mailbox, int], chat: Receiver) -> Hub:
    chat_port = chat.url.rsplit(":", 1)[1]
    text = TOPOLOGY.replace("SMTP_PORT", str(mailbox[1])).replace("CHAT_PORT", chat_port)
    return make_hub(text)


def body_of(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


async def test_rejection_mails_product_and_dev_of_the_upstream(
    alert_hub: Hub, treasury: Receiver, mailbox: tuple[Mailbox, int], chat: Receiver
) -> None:
    box, _ = mailbox
    treasury.respond(422, "payee_account is not a valid account number")
    [doc] = await submit(alert_hub, pay("PO-1"))
    await alert_hub.engine.step()

    result = await asyncio.to_thread(alerts(alert_hub).run_once)

    assert (result.events, result.messages, result.sent) == (1, 1, 1)
    [(to, mail)] = box.messages
    assert sorted(to) == ["trading-dev@example.test", "trading-pm@example.test"]
    assert mail["Subject"] == "[interlink] delivery rejected: trading-treasury"
    body = body_of(mail)
    assert "payee_account is not a valid account number" in body
    assert f"key PO-1 (delivery 1, document {doc['id']})" in body
    assert "interlink repush --flow trading-treasury --reason rejected --dry-run" in body
    assert chat.requests == []  # the treasury ops' chat is not told of rejected data
    [record] = alerts(alert_hub).history()
    assert record["status"] == "sent" and record["recipients"] == sorted(to, reverse=True)
    # nothing new: nothing more is sent
    assert (await asyncio.to_thread(alerts(alert_hub).run_once)).sent == 0
    assert len(box.messages) == 1


async def test_a_flood_of_rejections_sends_a_handful_of_mails(
    alert_hub: Hub, treasury: Receiver, mailbox: tuple[Mailbox, int], clock: FakeClock
) -> None:
    box, _ = mailbox
    treasury.respond(422, "amount must be positive")
    for start in range(0, 10_000, 2000):
        await alert_hub.intake.submit(
            alert_hub.topology.systems["trading"],
            [Item("payment_order", pay(f"F-{i}")) for i in range(start, start + 2000)],
        )
    alerter = alerts(alert_hub)
    # The real engine loop and the real background alerter, side by side.
    stop = asyncio.Event()
    tasks = [asyncio.create_task(loop(stop)) for loop in alert_hub.hooks.background]
    tasks.append(asyncio.create_task(alert_hub.engine.run(stop)))
    try:
        for _ in range(3000):
            if (
                len(treasury.requests) >= 10_000
                and alert_hub.status()["flows"][FLOW]["dead"] == 10_000
            ):
                break
            await asyncio.sleep(0.01)  # waiting for the engine to get through the flood
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    clock.advance(timedelta(minutes=5))
    await asyncio.to_thread(alerter.run_once)
    clock.advance(timedelta(minutes=5))
    await asyncio.to_thread(alerter.run_once)

    logged = alert_hub.store.read_sync(lambda conn: events.list_events(conn, 20_000))
    assert sum(1 for e in logged if e.kind == "delivery_rejected") == 10_000
    assert 2 <= len(box.messages) <= 5, [m["Subject"] for _, m in box.messages]
    records = alerter.history(limit=1000)
    assert sum(r["count"] for r in records) == 10_000
    assert all(r["status"] == "sent" for r in records)
    summary = body_of(box.messages[-1][1])
    assert "In the last 5 min: treasury refused " in summary
    assert "interlink repush --flow trading-treasury --reason rejected --dry-run" in summary
    # one incident for the whole flood, every rejection counted on it
    [incident] = incidents(alert_hub).search()
    assert incident["occurrences"] == 10_000


async def test_an_unreachable_mail_server_does_not_block_delivery(
    make_hub: Callable[[str], Hub], treasury: Receiver, clock: FakeClock
) -> None:
    closed = free_port()  # nothing listens here
    hub = make_hub(TOPOLOGY.replace("SMTP_PORT", str(closed)).replace("CHAT_PORT", "1"))
    # A real background alerter beside the real engine loop.
    stop = asyncio.Event()
    loops = [asyncio.create_task(loop(stop)) for loop in hub.hooks.background]
    engine = asyncio.create_task(hub.engine.run(stop))
    try:
        treasury.respond(422, "no such payee", times=1)
        await submit(hub, pay("R-1"))
        await submit(hub, *(pay(f"OK-{i}") for i in range(50)))
        for _ in range(500):
            if len(treasury.requests) >= 51:
                break
            await asyncio.sleep(0.01)  # waiting for the real engine loop, not for a retry
        assert len(treasury.requests) == 51
        for _ in range(300):
            if alerts(hub).history(status="pending"):
                break
            await asyncio.sleep(0.01)  # the background alerter's first pass
    finally:
        stop.set()
        await asyncio.gather(engine, *loops)
    delivered = hub.status()["flows"][FLOW]["delivered"]
    assert delivered == 50

    alerter = alerts(hub)
    [record] = alerter.history()
    assert record["status"] == "pending" and record["attempts"] == 1
    assert f"127.0.0.1:{closed}" in record["error"]
    for wait in RETRY:  # retried on schedule, then recorded as failed
        assert alerter.run_once().sent == 0
        clock.advance(wait)
        alerter.run_once()
    [record] = alerter.history()
    assert record["status"] == "failed" and record["attempts"] == len(RETRY) + 1
    # ... while the engine goes on delivering
    await submit(hub, pay("LATER"))
    await hub.engine.step()
    assert hub.status()["flows"][FLOW]["delivered"] == 51


async def test_a_chat_notification_arrives_through_apprise(
    alert_hub: Hub, treasury: Receiver, chat: Receiver, mailbox: tuple[Mailbox, int]
) -> None:
    box, _ = mailbox
    treasury.respond(503)
    await submit(alert_hub, *(pay(f"D-{i}") for i in range(3)))
    await alert_hub.engine.step()  # three unavailable answers open the circuit

    await asyncio.to_thread(alerts(alert_hub).run_once)

    [note] = chat.requests
    assert note.json["title"] == "[interlink] downstream down: treasury"
    assert "HTTP 503" in note.json["message"]
    [(to, _mail)] = box.messages  # dev and ops of both ends by mail
    assert sorted(to) == [
        "trading-dev@example.test",
        "trading-ops@example.test",
        "treasury-dev@example.test",
        "treasury-ops@example.test",
    ]
    channels = sorted(r["channel"] for r in alerts(alert_hub).history())
    assert channels == ["apprise", "email"]
    assert all("CHAT" not in r["target"] for r in alerts(alert_hub).history())


async def test_a_restarted_alerter_neither_resends_nor_skips(
    alert_hub: Hub, mailbox: tuple[Mailbox, int], clock: FakeClock
) -> None:
    box, _ = mailbox
    now = clock.now()

    def event(kind: str, **detail: object) -> None:
        alert_hub.store.write_sync(
            lambda conn: events.add_event(conn, now, kind, detail, "treasury")
        )

    event("maintenance_started", window=1, reason="upgrade")
    first = await asyncio.to_thread(Alerter(alert_hub).run_once)
    assert (first.messages, first.sent) == (1, 2)  # one message, by mail and by chat
    event("maintenance_ended", window=1, held=0)
    event("mystery_kind", x=1)
    restarted = await asyncio.to_thread(Alerter(alert_hub).run_once)
    assert (restarted.events, restarted.messages, restarted.sent) == (2, 2, 2)
    assert [m["Subject"] for _, m in box.messages] == [
        "[interlink] maintenance started: treasury",
        "[interlink] maintenance ended: treasury",
    ]
    assert "treasury is in maintenance (upgrade)." in body_of(box.messages[0][1])
    [unknown] = alerts(alert_hub).history(status="unrouted")
    assert unknown["kind"] == "mystery_kind"


async def test_alerts_api_and_send_test(
    alert_hub: Hub, mailbox: tuple[Mailbox, int], chat: Receiver
) -> None:
    box, _ = mailbox
    now = alert_hub.clock.now()
    alert_hub.store.write_sync(
        lambda conn: events.add_event(
            conn, now, "flow_held_auth", {"detail": "HTTP 401"}, "treasury", FLOW
        )
    )
    await asyncio.to_thread(alerts(alert_hub).run_once)
    server = await Api(alert_hub).start()
    try:
        status, body, _ = await server.request("GET", "/api/v1/alerts")
        assert status == 200
        items = body["items"]  # type: ignore[index]
        email, chat_row = sorted(items, key=lambda r: r["channel"], reverse=True)
        assert email["recipients"] == ["treasury-ops@example.test"]
        assert chat_row["recipients"] == ["treasury/ops"] and chat_row["status"] == "sent"
        assert "interlink flows resume trading-treasury" in email["body"]
        status, _, _ = await server.request("GET", "/api/v1/alerts?status=nope")
        assert status == 400
    finally:
        await server.stop()
    results = await asyncio.to_thread(send_test, alert_hub)
    assert set(results.values()) == {"ok"} and len(results) == 2
    assert box.messages[-1][1]["Subject"] == "[interlink] test message"
    assert len(box.messages[-1][0]) == 5  # every contact with an email
    assert len(chat.requests) == 2 and json.loads(chat.requests[-1].body)["title"].endswith(
        "test message"
    )


async def test_markup_in_data_reaches_mail_chat_and_the_cli_as_it_is(
    alert_hub: Hub,
    treasury: Receiver,
    mailbox: tuple[Mailbox, int],
    chat: Receiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    box, _ = mailbox
    key = "T-[bold]77[/bold]-[x]"
    monkeypatch.setenv("INTERLINK_CONSOLE_URL", "https://interlink.example.test")
    treasury.respond(422, "[red]no payee[/red]")
    [doc] = await submit(alert_hub, pay(key))
    await alert_hub.engine.step()
    now = alert_hub.clock.now()
    alert_hub.store.write_sync(
        lambda conn: events.add_event(
            conn, now, "flow_held_auth", {"detail": "HTTP 401: [b]token[/b]"}, "treasury", FLOW
        )
    )

    await asyncio.to_thread(alerts(alert_hub).run_once)

    rejected = next(m for _, m in box.messages if "rejected" in m["Subject"])
    assert rejected["Subject"] == "[interlink] delivery rejected: trading-treasury"
    body = body_of(rejected)
    assert f"key {key} (delivery 1, document {doc['id']}): HTTP 422: [red]no payee[/red]" in body
    assert "Console: https://interlink.example.test/flows/trading-treasury" in body
    [note] = chat.requests  # the treasury ops' chat hears of the credentials only
    assert note.json["title"] == "[interlink] flow held: unauthorized: trading-treasury"
    assert "(HTTP 401: [b]token[/b])" in note.json["message"]

    listed = await run_cli_async("alerts", "list", cwd=tmp_path)
    assert listed.code == 0, listed.err
    assert "[interlink] delivery rejected: trading-treasury" in listed.out
    shown = await run_cli_async("deliveries", "--key", key, cwd=tmp_path)
    assert key in shown.out and "[red]no payee[/red]" in shown.out
