"""Retention: prune removes old, fully delivered documents and never an undelivered one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from interlink.errors import InputError
from interlink.intake import Item
from interlink.store.schema import attempts, deliveries, documents


def counts(hub):
    def read(conn):
        return tuple(
            conn.execute(select(func.count()).select_from(t)).scalar()
            for t in (documents, deliveries, attempts)
        )

    return hub.store.read_sync(read)


async def test_prune_keeps_everything_undelivered(hub, treasury, finance, clock):
    source = hub.topology.systems["trading"]
    old = await hub.intake.submit(
        source, [Item("payment_order", {"order_no": f"OLD-{i}", "amount": "1"}) for i in range(3)]
    )
    finance.respond(422, "rejected", times=1)  # OLD-0 dies on the finance flow
    await hub.engine.drain()
    clock.advance(timedelta(days=100))
    recent = await hub.intake.submit(
        source, [Item("payment_order", {"order_no": "NEW", "amount": "1"})]
    )
    await hub.engine.drain()
    assert counts(hub) == (4, 8, 8)

    preview = hub.prune(timedelta(days=90), actor="test", dry_run=True)
    assert preview["documents"] == 2
    assert counts(hub) == (4, 8, 8)

    result = hub.prune(timedelta(days=90), actor="test", batch=1)
    assert (result["documents"], result["deliveries"], result["attempts"]) == (2, 4, 4)
    kept = {d.id for d in hub.documents("OLD-0")} | {d.id for d in hub.documents("NEW")}
    assert kept == {old[0]["id"], recent[0]["id"]}
    assert not hub.documents("OLD-1") and not hub.documents("OLD-2")
    assert hub.audit()[0]["action"] == "prune"

    with pytest.raises(InputError):
        hub.prune(timedelta(0), actor="test")
