"""Intake through hub.intake.submit: identity, revisions, conflicts, refusals, nothing stored."""

from __future__ import annotations

from typing import Any

from interlink.errors import Conflict, Forbidden, Invalid, TooLarge
from interlink.intake import Item
from interlink.service import DeliveryFilter, Hub
from tests.conftest import FINANCE_FLOW, TREASURY_FLOW, pay, submit
from tests.receiver import Receiver


def stored(hub: Hub) -> int:
    return len(hub.deliveries(DeliveryFilter(), limit=1000))


async def _submit(hub: Hub, *items: Item, source: str = "trading") -> list[Any]:
    return await hub.intake.submit(hub.topology.systems[source], list(items))


async def test_identical_resubmission_is_a_no_op(hub: Hub, treasury: Receiver) -> None:
    [first] = await submit(hub, pay("A1"))
    assert (first["revision"], first["duplicate"]) == (1, False)
    # Same payload, keys in another order: the same document.
    [again] = await submit(hub, {"kind": "pay", "amount": "10.00", "order_no": "A1"})

    assert again["id"] == first["id"]
    assert (again["duplicate"], again["revision"]) == (True, 1)
    assert {d["flow"] for d in again["deliveries"]} == {TREASURY_FLOW, FINANCE_FLOW}
    assert len(hub.documents("A1")) == 1
    assert stored(hub) == 2
    await hub.engine.drain()
    assert treasury.keys() == [first["id"]]
    [late] = await submit(hub, pay("A1"))
    assert late["duplicate"] is True
    assert {d["status"] for d in late["deliveries"]} == {"delivered"}
    assert await hub.engine.drain() == 0


async def test_same_key_new_payload_is_revision_2(hub: Hub) -> None:
    [rev1] = await submit(hub, pay("A1"))
    [rev2] = await submit(hub, pay("A1", amount="-10.00", kind="refund"))

    assert rev2["id"] != rev1["id"]
    assert (rev2["key"], rev2["revision"], rev2["duplicate"]) == ("A1", 2, False)
    docs = hub.documents("A1")
    assert [(d.revision, d.payload["amount"]) for d in docs] == [(1, "10.00"), (2, "-10.00")]
    assert stored(hub) == 4


async def test_idempotency_key_reuse(hub: Hub) -> None:
    [first] = await submit(hub, pay("A1"), idempotency_key="req-1")
    [again] = await submit(hub, pay("A1"), idempotency_key="req-1")
    assert (again["id"], again["duplicate"]) == (first["id"], True)

    [conflict] = await _submit(hub, Item("payment_order", pay("A1", amount="99.00"), "req-1"))

    assert isinstance(conflict, Conflict)
    assert conflict.detail["document_id"] == first["id"]
    assert [d.revision for d in hub.documents("A1")] == [1]
    assert stored(hub) == 2


async def test_a_batch_accepts_and_refuses_item_by_item(hub: Hub, finance: Receiver) -> None:
    results = await _submit(
        hub,
        Item("payment_order", pay("B1")),
        Item("invoice", pay("B2")),
        Item("payment_order", {"amount": "1.00"}),  # no business key
        Item("payment_order", "not an object"),
        Item("payment_order", pay("B3")),
        Item("payment_order", pay("B4", amount="x")),  # not a decimal
    )

    ok = [r for r in results if isinstance(r, dict)]
    assert [r["key"] for r in ok] == ["B1", "B3"]
    assert [type(r) for r in results] == [dict, Invalid, Invalid, Invalid, dict, Invalid]
    assert results[2].problems[0]["path"] == "$.order_no"
    assert results[5].problems[0]["path"] == "$.amount"
    assert hub.documents("B2") == [] and hub.documents("B4") == []
    assert stored(hub) == 4
    await hub.engine.drain()
    assert sorted(finance.keys()) == sorted(r["id"] for r in ok)


async def test_refusals_store_nothing(hub: Hub) -> None:
    huge = pay("C1", memo="x" * (1_048_576 + 1))
    [too_large] = await _submit(hub, Item("payment_order", huge))
    [unknown] = await _submit(hub, Item("invoice", pay("C2")))
    [no_type] = await _submit(hub, Item(None, pay("C3")))
    # finance receives payment orders; it has no flow that sends them.
    [forbidden] = await _submit(hub, Item("payment_order", pay("C4")), source="finance")

    assert isinstance(too_large, TooLarge) and "limit is 1048576 bytes" in too_large.message
    assert isinstance(unknown, Invalid) and "unknown document type 'invoice'" in unknown.message
    assert isinstance(no_type, Invalid)
    assert isinstance(forbidden, Forbidden)
    assert stored(hub) == 0
    for key in ("C1", "C2", "C3", "C4"):
        assert hub.documents(key) == []
    assert await hub.engine.drain() == 0
