"""Deadline escalation end to end: at risk once, missed once, with the reason each document
is stuck, grouped per flow."""

from __future__ import annotations

from datetime import UTC, datetime

from interlink.clock import FakeClock
from interlink.features.maintenance.service import maintenance
from interlink.service import Hub
from tests.conftest import FINANCE_FLOW, TREASURY_FLOW, pay, submit
from tests.receiver import Receiver


def deadline_events(hub: Hub) -> list[dict]:
    found = [e for e in hub.events(1000) if e["kind"].startswith("deadline_")]
    return sorted(found, key=lambda e: e["id"])


def at(hour: int, minute: int) -> datetime:
    return datetime(2026, 1, 5, hour, minute, tzinfo=UTC)


async def test_at_risk_then_missed_once_each_with_reasons(
    hub: Hub, treasury: Receiver, clock: FakeClock
) -> None:
    maintenance(hub).add("treasury", at(2, 10), at(6, 0), "migration", actor="ops")
    treasury.respond(422, times=1)
    [rejected] = await submit(hub, pay("R1", pay_before="2026-01-05T03:30:00Z"))
    await hub.engine.drain()
    clock.set(at(2, 11))
    [held] = await submit(hub, pay("H1", pay_before="2026-01-05T11:30:00+08:00"))
    await submit(hub, pay("H2", pay_before="2026-01-05T05:00:00Z"))  # not at risk yet
    await hub.engine.drain()

    clock.set(at(2, 29))
    await hub.engine.step()
    assert deadline_events(hub) == []

    clock.set(at(2, 31))
    await hub.engine.step()
    [risk] = deadline_events(hub)
    assert (risk["kind"], risk["flow"], risk["system"]) == (
        "deadline_at_risk",
        TREASURY_FLOW,
        "treasury",
    )
    docs = {d["key"]: d for d in risk["detail"]["documents"]}
    assert set(docs) == {"R1", "H1"}  # finance got its copies: nothing at risk there
    assert docs["R1"]["reason"] == "dead: rejected"
    assert docs["H1"]["reason"] == "held: maintenance"
    assert docs["H1"]["document_id"] == held["id"]
    assert docs["R1"]["document_id"] == rejected["id"]
    assert risk["detail"]["total"] == 2
    assert risk["detail"]["reasons"] == {"dead: rejected": 1, "held: maintenance": 1}

    clock.advance(60)
    await hub.engine.step()
    assert len(deadline_events(hub)) == 1

    clock.set(at(3, 30))
    await hub.engine.step()
    kinds = [e["kind"] for e in deadline_events(hub)]
    assert kinds == ["deadline_at_risk", "deadline_missed"]
    missed = deadline_events(hub)[-1]
    assert {d["key"] for d in missed["detail"]["documents"]} == {"R1", "H1"}

    # A document that arrives already late is reported missed, and only that.
    [late] = await submit(hub, pay("L1", pay_before="2026-01-05T03:00:00Z"))
    await hub.engine.drain()  # finance takes its copy before the next check
    clock.advance(10)
    await hub.engine.step()
    clock.advance(10)
    await hub.engine.step()
    kinds = [e["kind"] for e in deadline_events(hub)]
    assert kinds == ["deadline_at_risk", "deadline_missed", "deadline_missed"]
    last = deadline_events(hub)[-1]
    assert [d["document_id"] for d in last["detail"]["documents"]] == [late["id"]]
    assert all(e["flow"] != FINANCE_FLOW for e in deadline_events(hub))
