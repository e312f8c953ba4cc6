"""Holds left behind by a race between processes are swept up by the engine."""

from __future__ import annotations

from sqlalchemy import update

from interlink.intake import Item
from interlink.store.schema import deliveries


async def test_blocked_revision_whose_predecessor_was_delivered_elsewhere(hub, treasury, clock):
    source = hub.topology.systems["trading"]
    first = await hub.intake.submit(
        source, [Item("payment_order", {"order_no": "R-1", "amount": "1", "kind": "pay"})]
    )
    second = await hub.intake.submit(
        source, [Item("payment_order", {"order_no": "R-1", "amount": "1", "kind": "refund"})]
    )
    assert second[0]["deliveries"][0] == {
        "flow": "trading-treasury",
        "status": "held",
        "reason": "blocked",
    }
    # Another process delivered revision 1 and committed after revision 2 was placed, so
    # its release found nothing to release: revision 2 would wait for ever.
    hub.store.write_sync(
        lambda conn: conn.execute(
            update(deliveries)
            .where(deliveries.c.document_id == first[0]["id"])
            .values(status="delivered")
        )
    )
    await hub.engine.drain()
    clock.advance(5)  # past a heartbeat: the sweep runs
    await hub.engine.drain()
    treasury_keys = [r.headers["Interlink-Revision"] for r in treasury.requests]
    assert treasury_keys == ["2"]
    assert hub.document(second[0]["id"]).deliveries[0].status == "delivered"


async def test_down_hold_left_after_the_circuit_closed(hub, treasury, clock):
    source = hub.topology.systems["trading"]
    doc = await hub.intake.submit(
        source, [Item("payment_order", {"order_no": "D-1", "amount": "1"})]
    )
    # Placed held:downstream_down by a process that still saw the circuit open.
    hub.store.write_sync(
        lambda conn: conn.execute(
            update(deliveries)
            .where(deliveries.c.document_id == doc[0]["id"])
            .values(status="held", reason="downstream_down")
        )
    )
    clock.advance(5)
    await hub.engine.drain()
    assert [d.status for d in hub.document(doc[0]["id"]).deliveries] == ["delivered", "delivered"]
