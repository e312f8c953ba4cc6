"""Crash recovery: a lease that runs out returns its delivery to pending; nothing is lost."""

from __future__ import annotations

from datetime import timedelta

from interlink.clock import FakeClock
from interlink.service import Hub
from tests.conftest import FINANCE_FLOW, TREASURY_FLOW, delivery_of, pay, submit
from tests.receiver import Receiver

# lease (30 s) + the downstream's timeout (2 s) in the shared topology
LEASE = timedelta(seconds=32)


async def test_lost_claims_are_resent_after_the_lease(
    hub: Hub, treasury: Receiver, finance: Receiver, clock: FakeClock
) -> None:
    docs = await submit(hub, pay("A1"), pay("A2"), pay("A3"))
    ids = sorted(d["id"] for d in docs)

    jobs = await hub.engine.claim()  # ...and the worker dies before sending anything
    assert len(jobs) == 6
    assert hub.status()["flows"][TREASURY_FLOW]["in_flight"] == 3
    assert all(d.lease_until == clock.now() + LEASE for d in hub.document(ids[0]).deliveries)

    clock.advance(LEASE)
    assert await hub.engine.step() == 0  # not expired yet: nobody else may take them
    assert treasury.requests == []
    clock.advance(1)
    assert await hub.engine.drain() == 6

    for doc_id in ids:
        for flow in (TREASURY_FLOW, FINANCE_FLOW):
            d = delivery_of(hub, doc_id, flow)
            assert (d.status, d.attempts) == ("delivered", 1)
    assert sorted(treasury.keys()) == ids
    assert sorted(finance.keys()) == ids
    assert hub.status()["flows"][TREASURY_FLOW]["in_flight"] == 0


async def test_sent_but_unrecorded_is_resent_with_the_same_key_and_late_record_ignored(
    hub: Hub, treasury: Receiver, clock: FakeClock
) -> None:
    [doc] = await submit(hub, pay("A1"))
    jobs = await hub.engine.claim()
    sent = [await hub.engine.send(job) for job in jobs]  # reached the receiver, not recorded
    assert treasury.keys() == [doc["id"]]

    clock.advance(LEASE + timedelta(seconds=1))
    await hub.engine.drain()
    assert treasury.keys() == [doc["id"], doc["id"]]
    d = delivery_of(hub, doc["id"])
    assert (d.status, d.attempts) == ("delivered", 1)

    # The old worker's outcome arrives late: its lease is gone, so the row is left alone.
    await hub.engine.record(sent)
    after = delivery_of(hub, doc["id"])
    assert (after.status, after.attempts, after.delivered_at) == (
        "delivered",
        1,
        d.delivered_at,
    )
