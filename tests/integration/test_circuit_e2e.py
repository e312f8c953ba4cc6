"""The circuit breaker end to end: open, hold, probe with back-off, close, drain."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from aiohttp import web

from interlink.clock import FakeClock
from interlink.service import DeliveryFilter, Hub
from interlink.store.queries import deliveries
from tests.conftest import FINANCE_FLOW, TREASURY_FLOW, delivery_of, header, pay, submit
from tests.receiver import Received, Receiver


def next_probe_at(hub: Hub) -> datetime:
    value = hub.status()["systems"]["treasury"]["next_probe_at"]
    assert value is not None
    return datetime.fromisoformat(value)


async def test_circuit_opens_holds_probes_with_backoff_and_drains(
    hub: Hub, treasury: Receiver, finance: Receiver, clock: FakeClock
) -> None:
    treasury.respond(503, "down for release")
    [early] = await submit(hub, pay("A0"))
    await hub.engine.step()  # 1st unavailable: a retry at +5 s
    assert delivery_of(hub, early["id"]).status == "pending"

    docs = await submit(hub, pay("A1"), pay("A2"))
    await hub.engine.step()  # 2nd and 3rd: the circuit opens
    opened_at = clock.now()

    status = hub.status()
    assert status["systems"]["treasury"]["circuit"] == "open"
    assert status["systems"]["finance"]["circuit"] == "closed"
    assert status["flows"][TREASURY_FLOW]["held"] == {"downstream_down": 3}
    assert status["flows"][TREASURY_FLOW]["pending"] == 0
    assert next_probe_at(hub) == opened_at + timedelta(seconds=10)
    held = hub.deliveries(DeliveryFilter(flow=TREASURY_FLOW, status="held"))
    budget = {d.id: (d.failures, d.attempts) for d in held}
    assert len(treasury.requests) == 3

    # New intake for the down system arrives held; the other flow keeps delivering.
    [late] = await submit(hub, pay("A3"))
    by_flow = {d["flow"]: d for d in late["deliveries"]}
    assert by_flow[TREASURY_FLOW]["reason"] == "downstream_down"
    assert by_flow[FINANCE_FLOW]["status"] == "pending"
    await hub.engine.drain()
    assert delivery_of(hub, late["id"], FINANCE_FLOW).status == "delivered"
    assert len(finance.requests) == 4

    # One probe per interval, and the interval doubles: 10 s, 20 s, 40 s.
    sent = 3
    at = opened_at
    probes: list[int] = []
    for interval in (10, 20, 40):
        clock.set(at + timedelta(seconds=interval - 1))
        await hub.engine.drain()
        assert len(treasury.requests) == sent, f"a request before the {interval}s probe"
        clock.set(at + timedelta(seconds=interval))
        await hub.engine.drain()
        sent += 1
        assert len(treasury.requests) == sent
        at = clock.now()
        assert next_probe_at(hub) == at + timedelta(seconds=interval * 2)
        probe = hub.deliveries(DeliveryFilter(flow=TREASURY_FLOW))
        assert all(d.status == "held" for d in probe)
        probes.append(len(treasury.requests))
    # The probe is the oldest held delivery, sent with its own key.
    assert set(treasury.keys()[3:]) == {early["id"]}
    assert all(a.probe for a in delivery_of(hub, early["id"]).attempt_log[1:])

    # Well past give_up_after (1 h): probes keep failing, yet nothing dies and no budget is spent.
    for _ in range(30):
        clock.set(next_probe_at(hub))
        await hub.engine.drain()
    assert clock.now() - opened_at > timedelta(hours=1)
    assert next_probe_at(hub) - clock.now() == timedelta(minutes=5)  # probe_max
    held = hub.deliveries(DeliveryFilter(flow=TREASURY_FLOW, status="held"))
    assert len(held) == 4 and all(d.reason == "downstream_down" for d in held)
    for d in held:
        if d.document_id != early["id"]:
            assert (d.failures, d.attempts) == budget.get(d.id, (0, 0))
        else:
            assert d.failures == budget[d.id][0]
    assert len(treasury.requests) == 3 + 3 + 30

    # The downstream is back: the next probe closes the circuit and everything drains.
    treasury.respond(200, '{"ok":true}')
    clock.set(next_probe_at(hub))
    await hub.engine.drain()
    status = hub.status()
    assert status["systems"]["treasury"]["circuit"] == "closed"
    assert status["flows"][TREASURY_FLOW]["delivered"] == 4
    assert status["flows"][TREASURY_FLOW]["held"] == {}
    for doc in (early, *docs, late):
        d = delivery_of(hub, doc["id"])
        assert (d.status, d.failures) == ("delivered", 0)
    kinds = [e["kind"] for e in reversed(hub.events())]
    assert kinds.count("circuit_opened") == 1
    assert kinds.count("circuit_closed") == 1
    assert kinds.index("circuit_opened") < kinds.index("circuit_closed")
    received_ok = set(treasury.keys()[-4:])
    assert received_ok == {early["id"], docs[0]["id"], docs[1]["id"], late["id"]}


async def test_a_failure_then_a_success_resets_the_count(
    hub: Hub, treasury: Receiver, clock: FakeClock
) -> None:
    treasury.respond(503, times=2)
    await submit(hub, pay("A1"), pay("A2"))
    await hub.engine.step()
    await submit(hub, pay("A3"))
    await hub.engine.step()  # a success: the count starts again
    treasury.respond(503, times=2)
    clock.advance(5)
    await hub.engine.step()
    assert hub.status()["systems"]["treasury"]["circuit"] == "closed"


async def test_open_close_open_in_one_batch_leaves_nothing_stuck(
    hub: Hub, treasury: Receiver, clock: FakeClock
) -> None:
    docs = await submit(hub, *(pay(f"B{n}") for n in range(7)))
    ids = [d["id"] for d in docs]
    # The answers go by document, so the order in which outcomes are planned is known.
    answers = {doc_id: 503 for doc_id in ids}
    answers[ids[3]] = 200

    def answer(received: Received) -> web.Response:
        return web.Response(status=answers.get(header(received, "Idempotency-Key") or "", 200))

    treasury.respond_with(answer)
    await hub.engine.step()
    # Precondition: outcomes were planned in document order (attempt ids follow the plan).
    order = hub.store.read_sync(
        lambda conn: [
            a.delivery_id
            for a in sorted(
                (x for v in deliveries.attempts_of(conn, list(range(1, 100))).values() for x in v),
                key=lambda a: a.id,
            )
        ]
    )
    expected = [delivery_of(hub, i).id for i in ids]
    order = [i for i in order if i in expected]
    if order != expected:
        pytest.fail(f"setup: outcomes planned in order {order}, not {expected}")
    kinds = [e["kind"] for e in reversed(hub.events()) if e["kind"].startswith("circuit")]
    if kinds != ["circuit_opened", "circuit_closed", "circuit_opened"]:
        pytest.fail(f"setup: circuit transitions were {kinds}")

    answers.clear()  # the downstream is back
    for _ in range(20):
        clock.advance(30)
        await hub.engine.drain()
    circuit = hub.status()["systems"]["treasury"]["circuit"]
    for doc_id in ids:
        d = delivery_of(hub, doc_id)
        assert d.status == "delivered", f"{d.state} with the circuit {circuit}"
