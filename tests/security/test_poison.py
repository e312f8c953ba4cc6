"""A request we could not build never counts against the downstream: one upstream's poisoned
documents (a business key with a newline, stored before intake refused such keys) go dead as
``local_error`` and the member system stays open for every other flow."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import Connection, update

from interlink.clock import FakeClock
from interlink.engine.outcome import Outcome, classify_error
from interlink.errors import TransportError
from interlink.intake import Item
from interlink.service import DeliveryFilter, Hub
from interlink.store.schema import deliveries, documents
from interlink.transports.base import Request
from interlink.transports.http import HttpTransport
from tests.conftest import FINANCE_FLOW, TOPOLOGY, pay, submit
from tests.receiver import Receiver

CRM_FLOW = "crm-finance"

# The CRM sends customers to finance too: finance is the shared downstream.
SHARED = (
    TOPOLOGY.replace("systems:\n", "systems:\n  crm:\n    token_env: TEST_CRM_TOKEN\n")
    .replace(
        "documents:\n",
        "documents:\n  customer:\n    key: customer_no\n",
    )
    .replace(
        "engine:\n",
        f"  {CRM_FLOW}:\n    from: crm\n    to: finance\n    document: customer\n"
        "    path: /customers\n    retry: [5s, 30s, 2m]\n    give_up_after: 1h\nengine:\n",
    )
)


@pytest.fixture
def shared(make_hub: Callable[[str], Hub], monkeypatch: pytest.MonkeyPatch) -> Hub:
    monkeypatch.setenv("TEST_CRM_TOKEN", "crm-token")
    return make_hub(SHARED)


async def poisoned(hub: Hub, n: int) -> list[str]:
    """``n`` payment orders whose business key holds a newline, as if stored before the fix."""
    docs = await submit(hub, *(pay(f"P{i}") for i in range(n)))
    ids = [d["id"] for d in docs]

    def poison(conn: Connection) -> None:
        for doc_id in ids:
            bad = f"{doc_id}\nX-Injected: 1"
            conn.execute(update(documents).where(documents.c.id == doc_id).values(key=bad))
            conn.execute(
                update(deliveries).where(deliveries.c.document_id == doc_id).values(key=bad)
            )

    hub.store.write_sync(poison)
    return ids


async def customers(hub: Hub, *numbers: str) -> list[str]:
    results = await hub.intake.submit(
        hub.topology.systems["crm"],
        [Item("customer", {"customer_no": n, "name": "Li Lei"}) for n in numbers],
    )
    assert all(isinstance(r, dict) for r in results), results
    return [r["id"] for r in results]  # type: ignore[index]


def assert_dead_locally(hub: Hub, doc_ids: list[str]) -> None:
    for doc_id in doc_ids:
        for d in hub.document(doc_id).deliveries:
            assert (d.status, d.reason) == ("dead", "local_error"), d
            assert d.attempts == 1
            [attempt] = d.attempt_log
            assert attempt.outcome == "local_error"
            assert attempt.status_code is None
            assert "Interlink-Key" in attempt.detail and "control character" in attempt.detail
            assert d.last_error == attempt.detail


async def test_poisoned_deliveries_do_not_open_the_shared_downstreams_circuit(
    shared: Hub, finance: Receiver, treasury: Receiver, clock: FakeClock
) -> None:
    hub = shared
    bad = await poisoned(hub, 6)
    await hub.engine.drain()
    good = await customers(hub, "C1", "C2", "C3")
    await hub.engine.drain()
    # Whatever a broken circuit would have held goes out at its probes.
    for _ in range(4):
        clock.advance(timedelta(minutes=1))
        await hub.engine.drain()

    status = hub.status()
    assert status["systems"]["finance"]["circuit"] == "closed"
    assert status["systems"]["treasury"]["circuit"] == "closed"
    assert sorted(finance.keys()) == sorted(good)  # nothing poisoned went out
    assert treasury.requests == []
    for doc_id in good:
        [d] = hub.document(doc_id).deliveries
        assert d.status == "delivered"
    assert_dead_locally(hub, bad)
    events = hub.events(limit=1000)
    kinds = [e["kind"] for e in events]
    assert "circuit_opened" not in kinds
    local = [e for e in events if e["kind"] == "delivery_local_error"]
    assert {e["flow"] for e in local} == {FINANCE_FLOW, "trading-treasury"}
    assert len(local) == 12
    assert all("Interlink-Key" in e["detail"]["detail"] for e in local)
    dead = hub.deliveries(DeliveryFilter(status="dead", reason="local_error"), limit=100)
    assert len(dead) == 12


async def test_a_probe_that_fails_locally_gives_way_to_the_next(
    shared: Hub, finance: Receiver, clock: FakeClock
) -> None:
    hub = shared
    # Finance is really down: its circuit opens on the customers' answers.
    finance.respond(503, "down for release")
    bad = await poisoned(hub, 2)  # the oldest held deliveries: the probes' first picks
    good = await customers(hub, "C1", "C2", "C3")
    await hub.engine.drain()
    assert hub.status()["systems"]["finance"]["circuit"] == "open"

    finance.respond(200, "ok")
    clock.advance(timedelta(seconds=11))  # the first probe is due
    await hub.engine.drain()

    assert hub.status()["systems"]["finance"]["circuit"] == "closed"
    for doc_id in good:
        [d] = hub.document(doc_id).deliveries
        assert d.status == "delivered"
    for doc_id in bad:
        d = next(d for d in hub.document(doc_id).deliveries if d.flow == FINANCE_FLOW)
        assert (d.status, d.reason) == ("dead", "local_error")


async def test_a_signing_failure_is_local(
    shared: Hub, finance: Receiver, treasury: Receiver
) -> None:
    hub = shared
    hub.engine.secrets["treasury"] = "not-a-secret"  # as if the secret turned unreadable
    [doc] = await submit(hub, pay("S1"))
    await hub.engine.drain()

    by_flow = {d.flow: d for d in hub.document(doc["id"]).deliveries}
    treasury_delivery = by_flow["trading-treasury"]
    assert (treasury_delivery.status, treasury_delivery.reason) == ("dead", "local_error")
    assert "signing" in (treasury_delivery.last_error or "")
    assert by_flow[FINANCE_FLOW].status == "delivered"
    assert hub.status()["systems"]["treasury"]["circuit"] == "closed"
    assert treasury.requests == []


@pytest.mark.parametrize(
    ("url", "headers"),
    [
        ("{url}/x", {"Interlink-Key": "a\nb"}),
        ("{url}/x", {"Interlink-Key": "a\rb"}),
        ("{url}/x", {"Interlink-Key": "a\x00b"}),
        ("{url}/x", {"Bad Name": "v"}),
        ("http://[::1/x", {}),
        ("ftp://example.com/x", {}),
    ],
    ids=["newline", "carriage return", "nul", "bad header name", "bad url", "not http"],
)
async def test_the_transport_reports_what_it_could_not_build_as_local(
    finance: Receiver, url: str, headers: dict[str, str]
) -> None:
    transport = HttpTransport()
    try:
        with pytest.raises(TransportError) as caught:
            await transport.send(
                Request(url=url.format(url=finance.url), body=b"{}", headers=headers, timeout=2)
            )
    finally:
        await transport.close()
    assert caught.value.kind == "local"
    assert classify_error(caught.value).outcome is Outcome.LOCAL_ERROR
    assert finance.requests == []
