"""Pause and resume a flow: nothing goes out while paused; resume drains."""

from __future__ import annotations

from interlink.clock import FakeClock
from interlink.service import Hub
from tests.conftest import FINANCE_FLOW, TREASURY_FLOW, delivery_of, pay, submit
from tests.receiver import Receiver


async def test_paused_flow_gets_nothing_and_resume_drains(
    hub: Hub, treasury: Receiver, finance: Receiver, clock: FakeClock
) -> None:
    treasury.respond(503, times=1)
    [retrying] = await submit(hub, pay("A0"))
    await hub.engine.step()
    [queued] = await submit(hub, pay("A1"))

    result = hub.pause(TREASURY_FLOW, actor="duty", note="release at 20:00")

    assert result == {"flow": TREASURY_FLOW, "hold": "paused", "held": 2}
    flow = hub.status()["flows"][TREASURY_FLOW]
    assert flow["hold"]["reason"] == "paused"
    assert (flow["hold"]["by"], flow["hold"]["note"]) == ("duty", "release at 20:00")
    assert flow["held"] == {"paused": 2}
    [later] = await submit(hub, pay("A2"))
    assert later["deliveries"][0] == {"flow": TREASURY_FLOW, "status": "held", "reason": "paused"}

    clock.advance(3600)
    await hub.engine.drain()
    assert len(treasury.requests) == 1  # only the attempt before the pause
    assert delivery_of(hub, later["id"], FINANCE_FLOW).status == "delivered"
    assert delivery_of(hub, retrying["id"]).state == "held: paused"

    assert hub.resume(TREASURY_FLOW, actor="duty")["released"] == 3
    assert hub.status()["flows"][TREASURY_FLOW]["hold"] is None
    await hub.engine.drain()
    for doc in (retrying, queued, later):
        assert delivery_of(hub, doc["id"]).status == "delivered"
    assert sorted(treasury.keys()[1:]) == sorted(d["id"] for d in (retrying, queued, later))
    actions = [(a["action"], a["target"]) for a in reversed(hub.audit())]
    assert actions == [("pause", f"flow:{TREASURY_FLOW}"), ("resume", f"flow:{TREASURY_FLOW}")]


async def test_blocked_revision_released_during_pause_waits_for_resume(
    hub: Hub, treasury: Receiver, clock: FakeClock
) -> None:
    treasury.respond(503, times=1)
    [rev1] = await submit(hub, pay("K1"))
    [rev2] = await submit(hub, pay("K1", amount="2.00"))
    await hub.engine.step()
    clock.advance(5)
    jobs = await hub.engine.claim()  # rev 1 goes out...
    hub.pause(TREASURY_FLOW, actor="duty")  # ...and the flow is paused meanwhile
    sent = [await hub.engine.send(job) for job in jobs]
    await hub.engine.record(sent)

    assert delivery_of(hub, rev1["id"]).status == "delivered"
    assert delivery_of(hub, rev2["id"]).state == "held: paused"
    await hub.engine.drain()
    assert len(treasury.requests) == 2
    hub.resume(TREASURY_FLOW, actor="duty")
    await hub.engine.drain()
    assert delivery_of(hub, rev2["id"]).status == "delivered"


async def test_paused_flow_is_not_probed_while_its_downstream_is_down(
    hub: Hub, treasury: Receiver, clock: FakeClock
) -> None:
    treasury.respond(503)
    await submit(hub, pay("A1"), pay("A2"), pay("A3"))
    await hub.engine.step()
    assert hub.status()["systems"]["treasury"]["circuit"] == "open"
    hub.pause(TREASURY_FLOW, actor="duty")

    clock.advance(60)
    await hub.engine.drain()

    assert len(treasury.requests) == 3
