"""Change notices end to end: what a change touches for each way of naming it (a proposed
schema, a field, a code value, nothing: the topology's derives), the notice mailed to a real
aiosmtpd server with each recipient's personal link, links that cannot be forged, altered,
borrowed or used after they expire, reminders sent once, the readiness item, and changes in
the iCalendar feed."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import socket
from collections.abc import Callable, Iterator
from datetime import timedelta
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiosmtpd.controller import Controller

from interlink.clock import FakeClock
from interlink.config import Topology
from interlink.errors import Forbidden, InputError
from interlink.example import EXAMPLE_CONTRACTS
from interlink.features.changes import impact, links
from interlink.features.changes.service import LINK_VALID, changes
from interlink.features.readiness.checklist import CHANGES_WITHIN, changes_item, check
from interlink.features.registry import FEATURES
from interlink.service import Hub
from tests.conftest import Api

TOPOLOGY = """\
timezone: Asia/Shanghai
database: sqlite:///hub.db
systems:
  trading:
    title: Order system
    token_env: TEST_TRADING_TOKEN
    contacts:
      - {{role: product, name: Fang Yuan, email: order-pm@example.test}}
  treasury:
    title: Treasury
    url: {treasury}
    timeout: 2s
    contacts:
      - {{role: product, name: Wang Fang, email: treasury-pm@example.test}}
      - {{role: ops, email: treasury-ops@example.test}}
  finance:
    title: Finance
    url: {finance}
    timeout: 2s
    contacts:
      - {{role: business, name: Zhao Min, email: finance@example.test}}
  ledger:
    url: {finance}
    contacts: [{{role: dev, email: ledger-dev@example.test}}]
  member:
    url: {finance}
    contacts: [{{role: dev, email: member-dev@example.test}}]
#BANK_SYSTEM
documents:
  payment_order:
    key: order_no
    contract: contracts/payment_order.json
    scenarios:
      - {{name: payment, direction: forward, likelihood: high, when: {{kind: pay}}}}
      - {{name: refund, direction: reverse, likelihood: low, when: {{kind: refund}}}}
  journal: {{key: entry_no}}
  customer: {{key: customer_id}}
flows:
  trading-treasury:
    from: trading
    to: treasury
    document: payment_order
    path: /payments
    reads: [order_no, kind, amount, currency]
  trading-finance: {{from: trading, to: finance, document: payment_order, path: /trades}}
  finance-ledger:
    from: finance
    to: ledger
    document: journal
    path: /journal
    reads: [entry_no, total]
    derives: {{total: amount}}
  trading-member:
    from: trading
    to: member
    document: customer
    path: /customers
    reads: [customer_id, name]
#BANK_FLOW
alerts:
  smtp: {{host: 127.0.0.1, port: SMTP_PORT, from: interlink@example.test}}
"""
# A bank whose flow maps payment orders, its kind through a code table: only in `network`.
BANK_SYSTEM = """\
  bank:
    url: http://127.0.0.1:9
    contacts: [{role: dev, email: bank-dev@example.test}]
code_tables:
  payment_kind: {pay: "01"}
"""
BANK_FLOW = """\
  trading-bank:
    from: trading
    to: bank
    document: payment_order
    path: /pay
    map:
      fields:
        order: order_no
        pay_type: {path: kind, code: payment_kind}
"""


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield box, controller.port
    controller.stop()


def _contract(tmp_path: Path) -> None:
    (tmp_path / "contracts").mkdir(exist_ok=True)
    (tmp_path / "contracts" / "payment_order.json").write_text(
        EXAMPLE_CONTRACTS["contracts/payment_order.json"]
    )


@pytest.fixture
def network(write_topology: Callable[[str], Topology], tmp_path: Path) -> Topology:
    _contract(tmp_path)
    text = TOPOLOGY.replace("SMTP_PORT", "25").format(
        treasury="http://127.0.0.1:9", finance="http://127.0.0.1:9"
    )
    text = text.replace("#BANK_SYSTEM\n", BANK_SYSTEM).replace("#BANK_FLOW\n", BANK_FLOW)
    return write_topology(text)


@pytest.fixture
def change_hub(
    make_hub: Callable[[str], Hub],
    mailbox: tuple[Mailbox, int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Hub:
    _contract(tmp_path)
    monkeypatch.setenv("INTERLINK_CONSOLE_URL", "http://console.example.test")
    monkeypatch.setenv("INTERLINK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("INTERLINK_SECRET_KEY", raising=False)
    return make_hub(TOPOLOGY.replace("SMTP_PORT", str(mailbox[1])))


def flows(affected: list[impact.Affected]) -> dict[str, list[str]]:
    return {a.flow: a.reasons for a in affected}


# -- what a change touches ------------------------------------------------------------------


def test_a_field_touches_the_flows_that_read_it_and_what_derives_from_it(
    network: Topology,
) -> None:
    found = flows(impact.assess(network, "trading", "scenario", fields=["amount"]))
    assert found["trading-treasury"] == ["field `amount`: reads `amount`"]
    assert found["trading-finance"] == ["field `amount`: reads every field (no reads declared)"]
    assert found["finance-ledger"] == ["downstream: trading → finance → ledger carries total"]
    assert "trading-member" not in found
    # A field nobody reads by name reaches only the flow reading everything, and stops there:
    # the ledger's derives carry amount, not this.
    found = flows(impact.assess(network, "trading", "scenario", fields=["payee_note"]))
    assert list(found) == ["trading-finance"]


def test_a_code_value_touches_the_flows_that_read_its_field_with_the_scenario(
    network: Topology,
) -> None:
    affected = impact.assess(network, "trading", "codes", codes=[("kind", "refund")])
    found = flows(affected)
    assert found.pop("trading-bank") == [  # its map reads kind
        "code kind:refund: reads `kind`; payment_order with kind=refund is the refund scenario"
    ]
    assert found == {
        "trading-finance": [
            "code kind:refund: reads every field; payment_order with kind=refund is the "
            "refund scenario"
        ],
        "trading-treasury": [
            "code kind:refund: reads `kind`; payment_order with kind=refund is the refund scenario"
        ],
    }
    assert impact.systems_of(affected, "trading") == ["bank", "finance", "treasury"]
    # A value of one of the topology's code tables touches the flows whose map translates
    # through that table.
    found = flows(impact.assess(network, "trading", "codes", codes=[("payment_kind", "refund")]))
    assert found == {
        "trading-bank": [
            "code payment_kind:refund: its map translates pay_type through it; refund has no "
            "entry yet: such deliveries fail until code_tables.payment_kind has one"
        ]
    }
    # Code values are for product and business people: treasury's ops are not told.
    told = [c.email for c in impact.recipients(network, "treasury", "codes")]
    assert told == ["treasury-pm@example.test"]
    with pytest.raises(ValueError, match="TABLE:VALUE"):
        impact.parse_code("kind")


def test_a_release_touches_everything_downstream_and_the_flows_into_it(
    network: Topology,
) -> None:
    found = flows(impact.assess(network, "finance", "release"))
    assert found == {
        "finance-ledger": ["carries journal from finance"],
        "trading-finance": ["delivers to finance, which ships this release"],
    }
    affected = impact.assess(network, "trading", "config")
    assert flows(affected)["finance-ledger"] == [
        "downstream: trading → finance → ledger carries total"
    ]
    systems = {"treasury", "finance", "ledger", "member", "bank"}
    assert set(impact.systems_of(affected, "trading")) == systems
    # A config change is for ops and dev; a system with neither has everyone told.
    assert [c.email for c in impact.recipients(network, "finance", "config")] == [
        "finance@example.test"
    ]


async def test_a_proposed_schema_is_weighed_by_contract_impact(network: Topology) -> None:
    schema = json.loads(EXAMPLE_CONTRACTS["contracts/payment_order.json"])
    schema["properties"]["amount"] = {"type": "string"}  # no longer a number as well
    hub = Hub(network, clock=FakeClock(), features=FEATURES)  # weighing writes nothing
    try:
        weighed = changes(hub).weigh("trading", "contract", schema=schema)
        with pytest.raises(InputError, match="unknown kind"):
            changes(hub).weigh("trading", "rumour")
    finally:
        await hub.close()
    found = {a["flow"]: a["reasons"] for a in weighed["affected"]}
    assert found["trading-treasury"][0].startswith("contract: ")
    assert found["trading-treasury"][0].endswith("(it reads `amount`)")
    assert found["finance-ledger"] == [
        "contract, downstream: trading → finance → ledger carries total"
    ]
    assert "trading-member" not in found
    assert weighed["subject"]["document"] == "payment_order"  # by the schema's title
    assert weighed["systems"] == ["treasury", "finance", "ledger"]


# -- notices, links, reminders, readiness ----------------------------------------------------


def _link(message: Message) -> tuple[int, int, str]:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    found = re.search(
        r"http://console\.example\.test/changes/(\d+)/ack/(\d+)\?token=(\S+)", payload.decode()
    )
    assert found, payload.decode()
    return int(found.group(1)), int(found.group(2)), found.group(3)


def _tamper(token: str, recipient: int) -> str:
    """The token's payload with another recipient, keeping the original signature."""
    body, signature = token.rsplit(".", 1)
    data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    data[1] = recipient
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{forged}.{signature}"


async def test_the_story_mail_links_reminders_and_readiness(
    change_hub: Hub, mailbox: tuple[Mailbox, int], clock: FakeClock
) -> None:
    box, _ = mailbox
    svc = changes(change_hub)
    ships = clock.now() + timedelta(days=3)
    change = await asyncio.to_thread(
        svc.announce,
        "trading",
        title="Refunds go through the payment order",
        at=ships,
        kind="codes",
        actor="cli:fang",
        codes=["kind:refund"],
        description="# Refunds\n\nA refund is a payment order with `kind: refund`.",
        attachments=[("slides.pdf", b"%PDF-1.4 training")],
    )
    # Treasury's product owner and finance's business contact, one personal mail each.
    assert sorted(r for rcpt, _ in box.messages for r in rcpt) == [
        "finance@example.test",
        "treasury-pm@example.test",
    ]
    mails = {rcpt[0]: m for rcpt, m in box.messages}
    treasury_mail = mails["treasury-pm@example.test"]
    assert "Refunds go through the payment order" in treasury_mail["Subject"]
    body = treasury_mail.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "flow trading-treasury (trading → treasury): code kind:refund: reads `kind`" in body
    assert "trading-finance" not in body  # each is told about its own flows
    change_id, treasury_id, treasury_token = _link(treasury_mail)
    _, finance_id, finance_token = _link(mails["finance@example.test"])
    assert change_id == change["id"] and treasury_id != finance_id
    assert change["attachments"][0]["content_type"] == "application/pdf"
    with pytest.raises(InputError, match="content is"):  # checked like incident attachments
        svc.attach(change_id, "shot.png", b"%PDF-1.4 not a png", "cli:fang")

    # The readiness item fails while a change due within the week waits for someone.
    due = svc.unacknowledged_due(CHANGES_WITHIN)
    item = changes_item(change_hub.topology.flows["trading-treasury"], due, CHANGES_WITHIN)
    assert item.status == "failed" and "treasury-pm@example.test" in item.detail

    # Links that cannot be used: forged with another key, altered, another recipient's.
    with pytest.raises(Forbidden, match="altered or forged"):
        svc.acknowledge_link(change_id, treasury_id, treasury_token[:-2] + "xx")
    with pytest.raises(Forbidden, match="altered or forged"):
        svc.acknowledge_link(change_id, finance_id, _tamper(treasury_token, finance_id))
    forged = links.sign("guessed-key", change_id, finance_id, "finance@example.test", ships)
    with pytest.raises(Forbidden, match="altered or forged"):
        svc.acknowledge_link(change_id, finance_id, forged)
    with pytest.raises(Forbidden, match="another change or recipient"):
        svc.acknowledge_link(change_id, finance_id, treasury_token)
    assert svc.get(change_id)["acknowledged"] == 0

    # The console page the link opens needs no sign-in; the button acknowledges.
    api = await Api(change_hub).start()
    try:
        path = f"/changes/{change_id}/ack/{treasury_id}"
        status, page, _ = await api.request("GET", f"{path}?token={treasury_token}", token=None)
        assert status == 200 and "<h1>Refunds</h1>" in str(page)  # the description's markdown
        status, _, _ = await api.request("GET", f"{path}?token={finance_token}", token=None)
        assert status == 403
        form = aiohttp.FormData({"token": treasury_token})
        status, page, _ = await api.request("POST", path, token=None, data=form)
        assert status == 200 and 'id="acknowledged"' in str(page)
        status, calendar, _ = await api.request("GET", "/api/v1/maintenance.ics")
        assert status == 200 and f"UID:change-{change_id}@" in str(calendar)
        # The API announces (a release: the flows out of finance, and its senders) and
        # acknowledges on a recipient's behalf.
        release = {"system": "finance", "title": "Ledger export v2", "kind": "release",
                   "at": (clock.now() + timedelta(days=30)).isoformat()}  # fmt: skip
        status, body, _ = await api.request("POST", "/api/v1/changes", json=release)
        assert status == 201, body
        assert isinstance(body, dict)
        assert {(a["from"], a["flow"], a["system"]) for a in body["affected"]} == {
            ("finance", "finance-ledger", "ledger"),
            ("trading", "trading-finance", "trading"),
        }
        told = {r["email"]: r["id"] for r in body["recipients"]}
        assert set(told) == {"ledger-dev@example.test", "order-pm@example.test"}
        status, body, _ = await api.request(
            "POST",
            f"/api/v1/changes/{body['id']}/ack",
            json={"recipient": told["ledger-dev@example.test"]},
        )
        assert status == 200 and isinstance(body, dict)
        assert body["unacknowledged"] == ["order-pm@example.test"]
        status, body, _ = await api.request("GET", "/api/v1/changes?system=ledger")
        assert status == 200 and isinstance(body, dict)
        assert [c["title"] for c in body["items"]] == ["Ledger export v2"]
    finally:
        await api.stop()
    told = {r["email"]: r for r in svc.get(change_id)["recipients"]}
    assert told["treasury-pm@example.test"]["acknowledged_by"] == ("link:treasury-pm@example.test")
    assert svc.get(change_id)["unacknowledged"] == ["finance@example.test"]

    # One reminder, a day before, to whoever has not acknowledged; never twice.
    box.messages.clear()
    clock.set(ships - timedelta(hours=23))
    assert (await asyncio.to_thread(svc.run_once)).reminded == 1
    assert (await asyncio.to_thread(svc.run_once)).reminded == 0
    clock.advance(timedelta(hours=1))
    assert (await asyncio.to_thread(svc.run_once)).reminded == 0
    assert [(rcpt, m["Subject"].split(":")[0]) for rcpt, m in box.messages] == [
        (["finance@example.test"], "[interlink] Reminder")
    ]

    # Once finance has acknowledged (in the console, by someone signed in), readiness passes.
    svc.acknowledge(change_id, finance_id, "console:duty")
    result = await check(change_hub, "trading-treasury")
    item_of = {i["item"]: i for i in result["flows"][0]["items"]}
    assert item_of["changes acknowledged"]["status"] == "passed"

    # A link stops working once it has expired.
    clock.set(ships + LINK_VALID + timedelta(seconds=1))
    with pytest.raises(Forbidden, match="expired"):
        svc.check_link(change_id, finance_id, finance_token)
