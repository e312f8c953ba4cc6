from __future__ import annotations

from interlink.intake import Item


async def test_submit_and_deliver(hub, treasury, finance):
    source = hub.topology.systems["trading"]
    results = await hub.intake.submit(
        source, [Item("payment_order", {"order_no": "A1", "amount": "10.00", "kind": "pay"})]
    )
    assert results[0]["deliveries"][0]["status"] == "pending"
    sent = await hub.engine.drain()
    assert sent == 2
    assert len(treasury.requests) == 1 and len(finance.requests) == 1
    status = hub.status()
    assert status["flows"]["trading-treasury"]["delivered"] == 1
