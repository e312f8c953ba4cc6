"""Re-push: one delivery or many by filter, with a dry run and an audit record."""

from __future__ import annotations

import json
from typing import Any

import pytest

from interlink.clock import FakeClock
from interlink.errors import InputError, NotFound
from interlink.service import DeliveryFilter, Hub
from tests.conftest import FINANCE_FLOW, TREASURY_FLOW, delivery_of, pay, submit
from tests.receiver import Receiver


def detail(record: dict[str, Any]) -> dict[str, Any]:
    """An audit record's detail (a JSON text in older service layers, a dict now)."""
    value = record["detail"]
    return json.loads(value) if isinstance(value, str) else value


async def test_repush_one_dead_delivery(hub: Hub, treasury: Receiver, clock: FakeClock) -> None:
    treasury.respond(422, "amount must be positive", times=1)
    [doc] = await submit(hub, pay("A1"))
    await hub.engine.drain()
    dead = delivery_of(hub, doc["id"])
    assert dead.state == "dead: rejected"
    assert dead.last_error == "HTTP 422: amount must be positive"

    clock.advance(60)
    after = hub.repush_one(dead.id, actor="duty")

    assert (after.status, after.reason, after.last_error) == ("pending", None, None)
    assert after.next_at == clock.now()
    [record] = hub.audit()
    assert (record["actor"], record["action"], record["target"]) == (
        "duty",
        "repush",
        f"delivery:{dead.id}",
    )
    assert detail(record)["from"] == "dead: rejected"
    await hub.engine.drain()
    d = delivery_of(hub, doc["id"])
    assert (d.status, d.attempts) == ("delivered", 2)
    assert treasury.keys() == [doc["id"], doc["id"]]


async def test_bulk_repush_by_flow_and_reason_with_dry_run(
    hub: Hub, treasury: Receiver, finance: Receiver
) -> None:
    treasury.respond(400, "bad", times=3)
    finance.respond(404, "no such ledger", times=3)
    docs = await submit(hub, pay("A1"), pay("A2"), pay("A3"))
    await hub.engine.drain()
    status = hub.status()["flows"]
    assert status[TREASURY_FLOW]["dead"] == status[FINANCE_FLOW]["dead"] == 3

    dry = hub.repush(DeliveryFilter(flow=TREASURY_FLOW, reason="rejected"), "duty", dry_run=True)
    assert (dry["count"], dry["dry_run"]) == (3, True)
    assert hub.status()["flows"][TREASURY_FLOW]["dead"] == 3  # a dry run changes nothing
    assert hub.audit() == []

    done = hub.repush(DeliveryFilter(flow=TREASURY_FLOW, reason="rejected"), "duty")
    assert done["count"] == 3
    assert sorted(done["sample"]) == sorted(delivery_of(hub, d["id"]).id for d in docs)
    [record] = hub.audit()
    assert (record["action"], record["target"]) == ("repush", f"flow:{TREASURY_FLOW}")
    assert detail(record)["count"] == 3
    await hub.engine.drain()
    status = hub.status()["flows"]
    assert status[TREASURY_FLOW]["delivered"] == 3
    assert status[FINANCE_FLOW]["dead"] == 3  # another flow's dead letters are untouched
    assert len(finance.requests) == 3

    # By status alone (dead is the default): the rest.
    assert hub.repush(DeliveryFilter(), "duty", dry_run=True)["count"] == 3
    assert hub.repush(DeliveryFilter(reason="rejected"), "duty")["count"] == 3
    assert len(hub.audit()) == 2
    await hub.engine.drain()
    assert hub.status()["flows"][FINANCE_FLOW]["delivered"] == 3
    assert sorted(finance.keys()[3:]) == sorted(d["id"] for d in docs)


async def test_repush_delivered_resends_with_the_same_key(
    hub: Hub, treasury: Receiver, finance: Receiver
) -> None:
    docs = await submit(hub, pay("A1"), pay("A2"))
    await hub.engine.drain()

    one = delivery_of(hub, docs[0]["id"])
    hub.repush_one(one.id, actor="duty")
    await hub.engine.drain()
    result = hub.repush(DeliveryFilter(flow=FINANCE_FLOW, status="delivered"), "duty")
    assert result["count"] == 2
    await hub.engine.drain()

    assert treasury.keys().count(docs[0]["id"]) == 2
    assert treasury.keys().count(docs[1]["id"]) == 1
    assert sorted(finance.keys()) == sorted([d["id"] for d in docs] * 2)
    assert delivery_of(hub, docs[0]["id"]).attempts == 2
    assert {a["target"] for a in hub.audit()} == {f"delivery:{one.id}", f"flow:{FINANCE_FLOW}"}


async def test_repush_refuses_pending_held_and_unknown(hub: Hub, treasury: Receiver) -> None:
    treasury.respond(503, times=1)
    [pending] = await submit(hub, pay("A1"))
    await hub.engine.drain()
    [held] = await submit(hub, pay("A1", amount="2.00"))  # blocked behind A1 rev 1
    p, h = delivery_of(hub, pending["id"]), delivery_of(hub, held["id"])
    assert (p.status, h.state) == ("pending", "held: blocked")

    with pytest.raises(InputError, match="only dead or delivered"):
        hub.repush_one(p.id, actor="duty")
    with pytest.raises(InputError, match="only dead or delivered"):
        hub.repush_one(h.id, actor="duty")
    with pytest.raises(InputError):
        hub.repush(DeliveryFilter(status="pending"), "duty")
    with pytest.raises(InputError):
        hub.repush(DeliveryFilter(status="held"), "duty")
    with pytest.raises(NotFound):
        hub.repush_one(999_999, actor="duty")
    with pytest.raises(NotFound):
        hub.repush(DeliveryFilter(flow="nope"), "duty")

    assert hub.audit() == []
    assert delivery_of(hub, pending["id"]).status == "pending"
    assert delivery_of(hub, held["id"]).state == "held: blocked"
