"""A maintenance window end to end, against a real loopback receiver: nothing reaches the
downstream while the window is open, everything arrives after it, and each of the window's
events is written exactly once."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from interlink.clock import FakeClock
from interlink.features.maintenance.service import maintenance
from interlink.service import Hub
from tests.conftest import FINANCE_FLOW, TREASURY_FLOW, delivery_of, pay, submit
from tests.receiver import Receiver


def kinds(hub: Hub, prefix: str = "maintenance_") -> Counter[str]:
    return Counter(e["kind"] for e in hub.events(1000) if e["kind"].startswith(prefix))


def event(hub: Hub, kind: str) -> dict:
    [found] = [e for e in hub.events(1000) if e["kind"] == kind]
    return found


async def test_window_holds_everything_then_drains(
    hub: Hub, treasury: Receiver, finance: Receiver, clock: FakeClock
) -> None:
    start = clock.now() + timedelta(hours=2)
    end = start + timedelta(hours=1)
    window = maintenance(hub).add("treasury", start, end, "release 4.2", actor="ops")
    assert window["state"] == "scheduled" and window["short_notice"] is False
    [before] = await submit(hub, pay("B0", pay_before="2026-01-05T12:30:00+08:00"))
    announced = event(hub, "maintenance_announced")
    assert announced["system"] == "treasury"
    assert announced["detail"]["window"] == window["id"]
    assert announced["detail"]["upstream_systems"] == ["trading"]
    assert announced["detail"]["affected_flows"][0]["flow"] == TREASURY_FLOW
    assert announced["detail"]["end_local"] == "2026-01-05T13:00:00+08:00"

    clock.set(start - timedelta(minutes=59))  # the reminder, one hour ahead
    treasury.respond(503, times=1)  # B0 fails once and waits for a retry
    await hub.engine.step()
    await hub.engine.step()
    assert len(treasury.requests) == 1
    reminder = event(hub, "maintenance_reminder")
    assert reminder["detail"]["deadlines"]["total"] == 1
    assert reminder["detail"]["deadlines"]["documents"][0]["key"] == "B0"

    clock.set(start + timedelta(minutes=1))
    await hub.engine.drain()
    assert delivery_of(hub, before["id"]).state == "held: maintenance"
    assert delivery_of(hub, before["id"], FINANCE_FLOW).status == "delivered"
    during = await submit(hub, pay("D1"), pay("D2"))
    for doc in during:
        assert doc["deliveries"][0] == {
            "flow": TREASURY_FLOW,
            "status": "held",
            "reason": "maintenance",
        }
    clock.advance(600)  # well past any probe or retry interval
    await hub.engine.drain()
    assert len(treasury.requests) == 1  # only B0's attempt before the window
    status = hub.status()
    assert status["systems"]["treasury"]["window"]["id"] == window["id"]
    assert status["systems"]["finance"]["window"] is None
    assert status["flows"][TREASURY_FLOW]["held"] == {"maintenance": 3}

    clock.set(end)
    await hub.engine.drain()
    assert sorted(treasury.keys()[1:]) == sorted([before["id"], *(d["id"] for d in during)])
    assert hub.status()["systems"]["treasury"]["window"] is None
    ended = event(hub, "maintenance_ended")
    assert ended["detail"]["held"] == 3

    clock.advance(5)
    await hub.engine.step()
    drained = event(hub, "maintenance_drained")
    assert drained["detail"]["held"] == 3 and drained["detail"]["stuck"] == {}
    assert drained["detail"]["summary"] == "3 held, all delivered by 13:00"

    clock.advance(3600)
    await hub.engine.step()
    await hub.engine.step()
    assert kinds(hub) == {
        "maintenance_announced": 1,
        "maintenance_reminder": 1,
        "maintenance_started": 1,
        "maintenance_ended": 1,
        "maintenance_drained": 1,
    }


async def test_paused_flow_stays_paused_after_the_window(
    hub: Hub, treasury: Receiver, clock: FakeClock
) -> None:
    start = clock.now() + timedelta(minutes=30)
    window = maintenance(hub).add("treasury", start, start + timedelta(minutes=30), "db", "ops")
    clock.set(start)
    [doc] = await submit(hub, pay("P1"))
    hub.pause(TREASURY_FLOW, actor="duty")
    clock.advance(timedelta(minutes=30))
    await hub.engine.drain()
    assert delivery_of(hub, doc["id"]).state == "held: paused"
    assert treasury.requests == []
    clock.advance(5)
    await hub.engine.step()
    drained = event(hub, "maintenance_drained")
    assert drained["detail"]["window"] == window["id"]
    assert drained["detail"]["stuck"] == {"held: paused": 1}
    assert "still stuck: 1 held: paused" in drained["detail"]["summary"]
    hub.resume(TREASURY_FLOW, actor="duty")
    await hub.engine.drain()
    assert treasury.keys() == [doc["id"]]


async def test_cancelling_an_open_window_releases_at_once(
    hub: Hub, treasury: Receiver, clock: FakeClock
) -> None:
    start = clock.now() + timedelta(minutes=10)
    window = maintenance(hub).add("treasury", start, start + timedelta(hours=2), "db", "ops")
    clock.set(start + timedelta(minutes=1))
    [doc] = await submit(hub, pay("C1"))
    await hub.engine.drain()
    assert treasury.requests == []
    cancelled = maintenance(hub).cancel(window["id"], actor="ops")
    assert cancelled["state"] == "cancelled"
    await hub.engine.drain()
    assert treasury.keys() == [doc["id"]]
    assert kinds(hub) == {
        "maintenance_announced": 1,
        "maintenance_started": 1,
        "maintenance_cancelled": 1,
        "maintenance_ended": 1,
    }


async def test_still_down_after_the_window_the_circuit_takes_over(
    hub: Hub, treasury: Receiver, clock: FakeClock
) -> None:
    start = clock.now() + timedelta(minutes=30)
    end = start + timedelta(minutes=30)
    maintenance(hub).add("treasury", start, end, "db", "ops")
    clock.set(start)
    await submit(hub, *(pay(f"S{i}") for i in range(4)))
    treasury.respond(503)  # the release overran: still down when the window ends
    clock.set(end)
    await hub.engine.drain()
    assert hub.status()["systems"]["treasury"]["circuit"] == "open"
    assert hub.status()["flows"][TREASURY_FLOW]["held"] == {"downstream_down": 4}
    clock.advance(3)
    await hub.engine.step()
    drained = event(hub, "maintenance_drained")
    assert drained["detail"]["stuck"] == {"held: downstream_down": 4}
    assert (
        drained["detail"]["summary"] == "4 held, 0 delivered, still stuck: 4 held: downstream_down"
    )
    assert len(drained["detail"]["stuck_sample"]) == 4
