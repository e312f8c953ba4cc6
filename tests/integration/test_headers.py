"""What every request carries on the wire: idempotency key, Standard Webhooks signature, ids."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from interlink.clock import FakeClock
from interlink.intake import canonical
from interlink.service import Hub
from interlink.transports.base import Transport
from interlink.transports.signing import generate_secret, verify
from tests.conftest import FINANCE_FLOW, HTTP_CLIENTS, SECRET, delivery_of, header, pay, submit
from tests.receiver import Receiver


@pytest.fixture(params=list(HTTP_CLIENTS))
def make_transport(request: pytest.FixtureRequest) -> Callable[[], Transport]:
    """Every case on every HTTP client: a difference between them is a transport bug."""
    return HTTP_CLIENTS[request.param]


async def test_headers_are_stable_across_retries_and_repush_and_signed(
    hub: Hub, treasury: Receiver, finance: Receiver, clock: FakeClock
) -> None:
    treasury.respond(503, times=1)
    [doc] = await submit(hub, pay("A1", amount="12.50"))
    sent_at = [int(clock.now().timestamp())]

    await hub.engine.step()
    clock.advance(5)
    sent_at.append(int(clock.now().timestamp()))
    await hub.engine.drain()
    assert delivery_of(hub, doc["id"]).status == "delivered"
    clock.advance(100)
    sent_at.append(int(clock.now().timestamp()))
    hub.repush_one(delivery_of(hub, doc["id"]).id, actor="ops")
    await hub.engine.drain()

    assert len(treasury.requests) == 3
    body = canonical(pay("A1", amount="12.50"))
    for received, stamp in zip(treasury.requests, sent_at, strict=True):
        assert header(received, "Idempotency-Key") == doc["id"]
        assert header(received, "webhook-id") == doc["id"]
        assert header(received, "webhook-timestamp") == str(stamp)
        assert header(received, "Interlink-Document-Type") == "payment_order"
        assert header(received, "Interlink-Key") == "A1"
        assert header(received, "Interlink-Revision") == "1"
        assert header(received, "Content-Type") == "application/json"
        assert received.body == body
        assert verify(SECRET, received.headers, received.body, now=stamp)
        # A wrong secret, a changed body or a replay long after do not verify.
        assert not verify(generate_secret(), received.headers, received.body, now=stamp)
        assert not verify(SECRET, received.headers, received.body + b" ", now=stamp)
        assert not verify(SECRET, received.headers, received.body, now=stamp + 3600)
    # Finance has no secret: ids and timestamp, no signature.
    [plain] = finance.requests
    assert header(plain, "Idempotency-Key") == doc["id"]
    assert header(plain, "webhook-id") == doc["id"]
    assert header(plain, "webhook-signature") is None
    assert delivery_of(hub, doc["id"], FINANCE_FLOW).status == "delivered"


async def test_revision_header_follows_the_revision(hub: Hub, finance: Receiver) -> None:
    [first] = await submit(hub, pay("K1"))
    await hub.engine.drain()
    [second] = await submit(hub, pay("K1", amount="-10.00", kind="refund"))
    await hub.engine.drain()

    assert second["revision"] == 2
    assert [header(r, "Interlink-Revision") for r in finance.requests] == ["1", "2"]
    assert finance.keys() == [first["id"], second["id"]]
    assert {header(r, "Interlink-Key") for r in finance.requests} == {"K1"}
