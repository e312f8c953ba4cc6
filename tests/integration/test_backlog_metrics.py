"""The backlog gauges on ``/metrics``, read from the store (SQLite and PostgreSQL) at scrape
time, over a real uvicorn server."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from interlink.metrics import BACKLOG_GAUGES, BacklogCollector, read_backlog
from interlink.model import CircuitState
from interlink.store.queries import circuits
from interlink.store.schema import deliveries

DOCS = "/api/v1/documents"


def order(no: str, kind: str = "pay") -> dict[str, object]:
    return {"type": "payment_order", "payload": {"order_no": no, "amount": "10.00", "kind": kind}}


async def scrape(api) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, text, _ = await api.request("GET", "/metrics", token=None)
    assert status == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def flow(name: str, **labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"flow": name, **labels}.items()))


async def test_backlog_gauges_follow_the_store(api, clock):
    before = await scrape(api)
    # Every flow has its series from the start, at zero, so "held > 0 for 10m" can fire.
    assert before["interlink_deliveries_pending", flow("trading-treasury")] == 0
    assert before["interlink_deliveries_held", flow("trading-treasury", reason="paused")] == 0
    assert before["interlink_deliveries_dead", flow("trading-finance", reason="rejected")] == 0
    assert before["interlink_circuit_open", (("system", "treasury"),)] == 0
    assert before["interlink_backlog_up", ()] == 1
    assert set(BACKLOG_GAUGES) <= {name for name, _labels in before}

    await api.request("POST", DOCS, json=order("PO-1"))
    await api.request("POST", DOCS, json=order("PO-1", kind="refund"))  # blocked behind rev 1
    await api.request("POST", DOCS, json=order("PO-2"))
    await api.request("POST", "/api/v1/flows/trading-finance/pause", json={"note": "release"})
    cached = await scrape(api)
    assert cached["interlink_deliveries_pending", flow("trading-treasury")] == 0, "within ttl"

    clock.advance(timedelta(seconds=90))
    # a dead delivery and an open circuit, as the engine would leave them
    hub = api.hub

    def kill_one(conn):
        conn.execute(
            update(deliveries)
            .where(deliveries.c.flow == "trading-treasury", deliveries.c.key == "PO-2")
            .values(status="dead", reason="rejected")
        )
        circuits.save_circuit(
            conn,
            {
                "system": "treasury",
                "state": CircuitState.OPEN,
                "failures": 5,
                "opened_at": clock.now(),
                "next_probe_at": clock.now(),
                "probe_interval": 5.0,
                "probing": False,
                "updated_at": clock.now(),
            },
        )

    await hub.store.write(kill_one)
    now = await scrape(api)
    assert now["interlink_deliveries_pending", flow("trading-treasury")] == 1
    assert now["interlink_deliveries_held", flow("trading-treasury", reason="blocked")] == 1
    assert now["interlink_deliveries_dead", flow("trading-treasury", reason="rejected")] == 1
    assert now["interlink_deliveries_held", flow("trading-finance", reason="paused")] == 3
    assert now["interlink_deliveries_pending", flow("trading-finance")] == 0
    assert now["interlink_oldest_pending_seconds", flow("trading-treasury")] == 90
    assert now["interlink_oldest_pending_seconds", flow("trading-finance")] == 0
    assert now["interlink_circuit_open", (("system", "treasury"),)] == 1
    assert now["interlink_circuit_open", (("system", "finance"),)] == 0
    assert ("interlink_circuit_open", (("system", "trading"),)) not in now, "upstream only"
    assert now["interlink_maintenance_window_open", (("system", "treasury"),)] == 0


async def test_a_maintenance_window_shows_while_open(api, clock):
    start = clock.now() + timedelta(days=3)
    status, _body, _ = await api.request(
        "POST",
        "/api/v1/maintenance",
        json={
            "system": "treasury",
            "start": start.isoformat(),
            "end": (start + timedelta(hours=1)).isoformat(),
            "reason": "release",
        },
    )
    assert status == 201, _body
    assert (await scrape(api))["interlink_maintenance_window_open", (("system", "treasury"),)] == 0
    clock.set(start + timedelta(minutes=5))
    assert (await scrape(api))["interlink_maintenance_window_open", (("system", "treasury"),)] == 1


async def test_one_read_per_ttl_and_an_unreadable_store_answers_up_0(hub, clock):
    reads = []

    def counting(h):
        reads.append(1)
        return read_backlog(h)

    collector = BacklogCollector(hub, ttl=5.0, read=counting)
    for _ in range(3):
        list(collector.collect())
    assert len(reads) == 1
    clock.advance(5)
    list(collector.collect())
    assert len(reads) == 2

    def broken(_h):
        raise RuntimeError("store down")

    failing = BacklogCollector(hub, read=broken)
    samples = [s for family in failing.collect() for s in family.samples]
    assert [(s.name, s.value) for s in samples] == [("interlink_backlog_up", 0)]
