"""Per-key ordering: on an ordered flow a later revision never overtakes an earlier one."""

from __future__ import annotations

from datetime import timedelta

from interlink.clock import FakeClock
from interlink.service import DeliveryFilter, Hub
from tests.conftest import FINANCE_FLOW, TREASURY_FLOW, delivery_of, header, pay, submit
from tests.receiver import Receiver


def revisions(receiver: Receiver, key: str) -> list[str | None]:
    return [
        header(r, "Interlink-Revision")
        for r in receiver.requests
        if header(r, "Interlink-Key") == key
    ]


async def test_later_revision_waits_for_the_earlier_one_on_the_ordered_flow(
    hub: Hub, treasury: Receiver, finance: Receiver, clock: FakeClock
) -> None:
    treasury.respond(503, times=1)
    [rev1] = await submit(hub, pay("K1"))
    [rev2] = await submit(hub, pay("K1", amount="-10.00", kind="refund"))
    [other] = await submit(hub, pay("K2"))

    assert rev2["revision"] == 2
    by_flow = {d["flow"]: d for d in rev2["deliveries"]}
    assert by_flow[TREASURY_FLOW] == {"flow": TREASURY_FLOW, "status": "held", "reason": "blocked"}
    assert by_flow[FINANCE_FLOW]["status"] == "pending"  # the unordered flow is not blocked

    await hub.engine.drain()

    assert delivery_of(hub, rev1["id"]).status == "pending"  # waiting for its retry
    assert delivery_of(hub, rev2["id"]).state == "held: blocked"
    assert delivery_of(hub, other["id"]).status == "delivered"  # another key is not held up
    assert delivery_of(hub, rev2["id"], FINANCE_FLOW).status == "delivered"
    blocked = hub.deliveries(DeliveryFilter(flow=TREASURY_FLOW, status="held", reason="blocked"))
    assert [d.document_id for d in blocked] == [rev2["id"]]
    assert hub.status()["flows"][TREASURY_FLOW]["held"] == {"blocked": 1}
    assert revisions(treasury, "K1") == ["1"]

    clock.advance(5)
    await hub.engine.drain()

    d1, d2 = delivery_of(hub, rev1["id"]), delivery_of(hub, rev2["id"])
    assert d1.status == d2.status == "delivered"
    assert d1.delivered_at is not None and d2.delivered_at is not None
    assert d2.delivered_at >= d1.delivered_at
    assert revisions(treasury, "K1") == ["1", "1", "2"]
    keys = [k for k in treasury.keys() if k != other["id"]]  # noqa: SIM118 (a method, not a dict)
    assert keys == [rev1["id"], rev1["id"], rev2["id"]]


async def test_three_revisions_go_one_at_a_time_in_order(
    hub: Hub, treasury: Receiver, clock: FakeClock
) -> None:
    treasury.respond(503, times=2)
    docs = [await submit(hub, pay("K1", amount=f"{n}.00")) for n in (1, 2, 3)]
    assert [d[0]["revision"] for d in docs] == [1, 2, 3]

    for _ in range(10):
        await hub.engine.drain()
        states = [delivery_of(hub, d[0]["id"]).status for d in docs]
        # Never more than one revision of the key is out of the blocked queue at a time.
        waiting = [s for s in states if s != "delivered"]
        assert sum(1 for s in waiting if s != "held") <= 1
        if not waiting:
            break
        clock.advance(30)
    assert revisions(treasury, "K1") == ["1", "1", "1", "2", "3"]


async def test_a_dead_revision_blocks_its_successor_until_re_pushed(
    hub: Hub, treasury: Receiver, clock: FakeClock
) -> None:
    treasury.respond(422, "payee unknown", times=1)
    [rev1] = await submit(hub, pay("K1"))
    await hub.engine.drain()
    assert delivery_of(hub, rev1["id"]).state == "dead: rejected"

    # A revision that arrives after its predecessor died is blocked, and stays blocked.
    [rev2] = await submit(hub, pay("K1", amount="-10.00", kind="refund"))
    assert rev2["deliveries"][0]["reason"] == "blocked"
    clock.advance(timedelta(hours=3))
    await hub.engine.drain()
    assert delivery_of(hub, rev2["id"]).state == "held: blocked"
    assert revisions(treasury, "K1") == ["1"]

    hub.repush_one(delivery_of(hub, rev1["id"]).id, actor="ops")
    assert delivery_of(hub, rev2["id"]).state == "held: blocked"
    await hub.engine.drain()

    assert delivery_of(hub, rev1["id"]).status == "delivered"
    assert delivery_of(hub, rev2["id"]).status == "delivered"
    assert revisions(treasury, "K1") == ["1", "1", "2"]
    assert treasury.keys() == [rev1["id"], rev1["id"], rev2["id"]]


async def test_successor_submitted_before_the_rejection_stays_blocked(
    hub: Hub, treasury: Receiver, clock: FakeClock
) -> None:
    treasury.respond(400, "bad amount", times=1)
    [rev1] = await submit(hub, pay("K1"))
    [rev2] = await submit(hub, pay("K1", amount="11.00"))

    await hub.engine.drain()
    clock.advance(600)
    await hub.engine.drain()

    assert delivery_of(hub, rev1["id"]).state == "dead: rejected"
    assert delivery_of(hub, rev2["id"]).state == "held: blocked"
    assert revisions(treasury, "K1") == ["1"]
    result = hub.repush(DeliveryFilter(flow=TREASURY_FLOW, reason="rejected"), actor="ops")
    assert result["count"] == 1
    await hub.engine.drain()
    assert revisions(treasury, "K1") == ["1", "1", "2"]
    assert delivery_of(hub, rev2["id"]).status == "delivered"


async def test_same_batch_revisions_are_ordered(hub: Hub, treasury: Receiver) -> None:
    results = await submit(hub, pay("K9"), pay("K9", amount="2.00"), pay("K9", amount="3.00"))
    assert [r["revision"] for r in results] == [1, 2, 3]
    assert [r["deliveries"][0].get("reason") for r in results] == [None, "blocked", "blocked"]

    await hub.engine.drain()

    assert revisions(treasury, "K9") == ["1", "2", "3"]
