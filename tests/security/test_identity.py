"""Identity by source: one upstream can neither swallow nor revise another's documents; an
identical payload is never a second payment; keys that cannot travel in a header are refused."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from interlink.errors import Invalid
from interlink.intake import Item
from interlink.service import DeliveryFilter, Hub
from interlink.store.schema import documents
from tests.conftest import TOKEN, TOPOLOGY, TREASURY_FLOW, delivery_of, header, pay, submit
from tests.receiver import Receiver

CRM_TOKEN = "crm-secret-token"

# Two systems send payment orders: trading to the treasury, the CRM to finance.
TWO_SOURCES = TOPOLOGY.replace(
    "systems:\n",
    "systems:\n  crm:\n    token_env: TEST_CRM_TOKEN\n",
).replace(
    "  trading-finance:\n    from: trading\n",
    "  crm-finance:\n    from: crm\n",
)
CRM_FLOW = "crm-finance"


@pytest.fixture
def two_sources(make_hub: Callable[[str], Hub], monkeypatch: pytest.MonkeyPatch) -> Hub:
    monkeypatch.setenv("TEST_CRM_TOKEN", CRM_TOKEN)
    return make_hub(TWO_SOURCES)


async def from_(hub: Hub, source: str, *items: Item) -> list[Any]:
    return await hub.intake.submit(hub.topology.systems[source], list(items))


def order(payload: dict[str, Any], key: str | None = None) -> Item:
    return Item("payment_order", payload, key)


async def test_another_source_cannot_swallow_a_document(
    two_sources: Hub, treasury: Receiver, finance: Receiver
) -> None:
    hub = two_sources
    [crm] = await from_(hub, "crm", order(pay("A1")))
    assert (crm["duplicate"], crm["revision"]) == (False, 1)

    # The trading system sends the same payload afterwards: its own document, not B's.
    [trading] = await from_(hub, "trading", order(pay("A1")))
    assert trading["duplicate"] is False
    assert trading["id"] != crm["id"]
    assert trading["revision"] == 1
    assert [d["flow"] for d in trading["deliveries"]] == [TREASURY_FLOW]

    # Idempotency-Keys are the submitter's too: the CRM's "req-1" is not trading's.
    [crm_keyed] = await from_(hub, "crm", order(pay("A2"), "req-1"))
    [trading_keyed] = await from_(hub, "trading", order(pay("A2", amount="7.00"), "req-1"))
    assert isinstance(trading_keyed, dict), trading_keyed
    assert trading_keyed["duplicate"] is False and trading_keyed["id"] != crm_keyed["id"]

    await hub.engine.drain()
    assert sorted(treasury.keys()) == sorted([trading["id"], trading_keyed["id"]])
    assert sorted(finance.keys()) == sorted([crm["id"], crm_keyed["id"]])
    assert delivery_of(hub, trading["id"]).status == "delivered"


async def test_another_source_cannot_revise_a_key(two_sources: Hub, treasury: Receiver) -> None:
    hub = two_sources
    [rev1] = await from_(hub, "trading", order(pay("K1")))
    [crm] = await from_(hub, "crm", order(pay("K1", amount="-10.00", kind="refund")))
    # The CRM's K1 is the CRM's first revision, not trading's second.
    assert (crm["revision"], crm["duplicate"]) == (1, False)

    [rev2] = await from_(hub, "trading", order(pay("K1", amount="12.00")))
    assert rev2["revision"] == 2

    # Reads by key show both sources' documents, each source's revisions in order.
    docs = hub.documents("K1", "payment_order")
    assert [(d.source, d.revision) for d in docs] == [("crm", 1), ("trading", 1), ("trading", 2)]

    # trading-treasury is ordered: its revision 2 waits for its own revision 1 only, and the
    # CRM's undelivered K1 (finance gets nothing yet) does not hold it back.
    await hub.engine.drain()
    assert treasury.keys() == [rev1["id"], rev2["id"]]


async def test_same_payload_under_a_new_idempotency_key_is_a_duplicate(
    hub: Hub, treasury: Receiver
) -> None:
    [first] = await submit(hub, pay("P1"), idempotency_key="req-1")
    [again] = await submit(hub, pay("P1"), idempotency_key="req-2")
    [plain] = await submit(hub, {"kind": "pay", "amount": "10.00", "order_no": "P1"})

    assert (again["duplicate"], again["id"], again["revision"]) == (True, first["id"], 1)
    assert (plain["duplicate"], plain["id"]) == (True, first["id"])
    assert [d.revision for d in hub.documents("P1")] == [1]
    await hub.engine.drain()
    assert treasury.keys() == [first["id"]]  # paid once

    # A refund is revision 2; sending the refund again under another key pays nothing more.
    [refund] = await submit(hub, pay("P1", amount="-10.00", kind="refund"), idempotency_key="r-1")
    [refund_again] = await submit(
        hub, pay("P1", amount="-10.00", kind="refund"), idempotency_key="r-2"
    )
    assert refund["revision"] == 2
    assert (refund_again["duplicate"], refund_again["id"]) == (True, refund["id"])
    await hub.engine.drain()
    assert treasury.keys() == [first["id"], refund["id"]]


async def test_same_payload_twice_in_one_batch_is_one_document(
    hub: Hub, treasury: Receiver
) -> None:
    results = await hub.intake.submit(
        hub.topology.systems["trading"],
        [
            order(pay("B1"), "batch-1"),
            order(pay("B1"), "batch-2"),
            order(pay("B2")),
            order(pay("B2"), "batch-3"),
        ],
    )
    assert all(isinstance(r, dict) for r in results), results
    assert [(r["duplicate"], r["revision"]) for r in results] == [
        (False, 1),
        (True, 1),
        (False, 1),
        (True, 1),
    ]
    assert results[1]["id"] == results[0]["id"] and results[3]["id"] == results[2]["id"]
    assert len(hub.deliveries(DeliveryFilter(flow=TREASURY_FLOW))) == 2
    await hub.engine.drain()
    assert sorted(treasury.keys()) == sorted([results[0]["id"], results[2]["id"]])


# -- keys that cannot travel in a header, refused through the HTTP API ---------------------------

DOCS = "/api/v1/documents"
BAD_KEYS = {
    "newline": "A\nB",
    "carriage return": "A\rB",
    "nul": "A\x00B",
    "delete": "A\x7fB",
    "escape": "A\x1bB",
    "c1 control": "A\x85B",
    "over 200 characters": "k" * 201,
    "over 256 bytes": "é" * 129,  # 258 bytes of UTF-8
}


def stored(hub: Hub) -> int:
    return len(hub.deliveries(DeliveryFilter(), limit=1000))


def documents_stored(hub: Hub) -> int:
    return hub.store.read_sync(
        lambda conn: conn.execute(select(func.count()).select_from(documents)).scalar_one()
    )


@pytest.mark.parametrize("key", BAD_KEYS.values(), ids=BAD_KEYS.keys())
async def test_a_key_that_cannot_be_a_header_is_refused(api: Any, key: str) -> None:
    status, body, _ = await api.request(
        "POST", DOCS, json={"type": "payment_order", "payload": pay(key)}
    )

    assert status == 422, body
    error = body["error"]
    assert error["code"] == "invalid"
    assert [p["path"] for p in error["problems"]] == ["$.order_no"]
    assert "order_no" in error["problems"][0]["message"]
    assert stored(api.hub) == 0 and documents_stored(api.hub) == 0


async def test_a_batch_refuses_only_the_bad_key(api: Any) -> None:
    batch = [
        {"type": "payment_order", "payload": pay("OK-1")},
        {"type": "payment_order", "payload": pay("BAD\n1")},
    ]
    status, body, _ = await api.request("POST", DOCS, json=batch)

    assert status == 202, body
    assert (body[0]["status"], body[0]["key"]) == (202, "OK-1")
    assert body[1]["status"] == 422
    assert body[1]["error"]["problems"][0]["path"] == "$.order_no"
    assert stored(api.hub) == 2  # the good one's two deliveries


async def test_a_key_of_256_bytes_travels(api: Any, treasury: Receiver) -> None:
    key = "é" * 128  # exactly 256 bytes
    status, body, _ = await api.request(
        "POST", DOCS, json={"type": "payment_order", "payload": pay(key)}
    )
    assert status == 202, body
    await api.hub.engine.drain()
    [received] = treasury.requests
    assert header(received, "Interlink-Key") == key
    assert delivery_of(api.hub, body["id"]).status == "delivered"


async def test_an_idempotency_key_over_256_characters_is_refused(api: Any) -> None:
    status, body, _ = await api.request(
        "POST",
        DOCS,
        json={"type": "payment_order", "payload": pay("I1")},
        headers={"Idempotency-Key": "k" * 257},
    )
    assert status == 422, body
    assert body["error"]["problems"][0]["path"] == "Idempotency-Key"
    assert "Idempotency-Key" in body["error"]["message"]
    assert stored(api.hub) == 0


# uvicorn already answers 400 to C0 controls and DEL in a header; intake's own check of them
# is tested below. What reaches intake are bytes beyond ASCII (read as Latin-1): refused, as a
# key of mixed encodings would never compare equal between a client and its retry.
@pytest.mark.parametrize("value", [b"\xc3\xa9", b"A\xe2\x80\xa6"], ids=["e acute", "ellipsis"])
async def test_a_non_ascii_idempotency_key_is_refused(api: Any, value: bytes) -> None:
    # aiohttp's client will not send these: write the request by hand.
    body = json.dumps({"type": "payment_order", "payload": pay("I1")}).encode()
    head = (
        f"POST {DOCS} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n"
    ).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", api.port)
    writer.write(head + b"Idempotency-Key: " + value + b"\r\n\r\n" + body)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    status = int(answer.split(b" ", 2)[1])
    assert status == 422, answer
    assert b"Idempotency-Key" in answer
    assert stored(api.hub) == 0


@pytest.mark.parametrize("value", ["", "A\x7fB", "A\tB", "é", "k" * 257])
async def test_intake_refuses_an_idempotency_key_that_cannot_be_a_header(
    hub: Hub, value: str
) -> None:
    [refused] = await hub.intake.submit(hub.topology.systems["trading"], [order(pay("I1"), value)])
    assert isinstance(refused, Invalid), refused
    assert refused.problems[0]["path"] == "Idempotency-Key"
    assert stored(hub) == 0


async def test_an_idempotency_key_of_256_bytes_is_accepted(api: Any) -> None:
    status, body, _ = await api.request(
        "POST",
        DOCS,
        json={"type": "payment_order", "payload": pay("I2")},
        headers={"Idempotency-Key": "k" * 256},
    )
    assert status == 202, body
