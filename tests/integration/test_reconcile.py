"""Reconciliation end to end in process: real deliveries to a loopback receiver, then XLSX,
NDJSON and query-endpoint sources, currencies, periods, stored runs and the API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
from aiohttp import web

from interlink.clock import FakeClock
from interlink.features.reconcile.service import Reconciler, reconcile, resolve_period
from interlink.service import Hub
from tests.conftest import TREASURY_FLOW, Api, pay, submit
from tests.receiver import Received, Receiver

TOPOLOGY = """\
timezone: Asia/Shanghai
database: sqlite:///hub.db
systems:
  trading:
    token_env: TEST_TRADING_TOKEN
  treasury:
    url: {treasury}
    timeout: 2s
  finance:
    url: {finance}
    timeout: 2s
documents:
  payment_order:
    key: order_no
    amount: amount
    scenarios:
      - {{name: payment, direction: forward, when: {{kind: pay}}}}
      - {{name: refund, direction: reverse, when: {{kind: refund}}}}
flows:
  trading-treasury:
    from: trading
    to: treasury
    document: payment_order
    path: /payments
    reconcile:
      map: {{key: order_no, amount: amount, status: status, date: booked_at,
             currency: ccy, revision: rev}}
      status_map: {{payment: PAID, refund: REFUNDED}}
      currency_field: currency
      endpoint:
        url: "{finance}/records"
        page_size: 2
        items_path: data.items
"""

DAY = "2026-01-05"


async def delivered(hub: Hub, *payloads: dict) -> list[dict]:
    docs = await submit(hub, *payloads)
    await hub.engine.drain()
    return docs


def period(hub: Hub) -> tuple[datetime | None, datetime | None]:
    return resolve_period(hub.topology.tz, DAY, None, None)


async def run_file(hub: Hub, path: Path, **kwargs: object) -> dict:
    service = reconcile(hub)
    since, until = period(hub)

    def work() -> dict:
        records = service.open_source(TREASURY_FLOW, path, None, since, until)
        return service.run(
            TREASURY_FLOW,
            records,
            since=since,
            until=until,
            **kwargs,  # type: ignore[arg-type]
        ).to_json()

    return await asyncio.to_thread(work)


async def test_xlsx_with_revisions_and_currency(
    make_hub: Callable[[str], Hub], tmp_path: Path
) -> None:
    from openpyxl import Workbook

    hub = make_hub(TOPOLOGY)
    await delivered(
        hub,
        pay("A1", "10.00", currency="CNY"),
        pay("A2", "20.00", currency="CNY"),
    )
    await delivered(hub, pay("A1", "10.00", kind="refund", currency="CNY"))  # revision 2
    book = Workbook()
    sheet = book.active
    sheet.append(["order_no", "rev", "amount", "ccy", "status", "booked_at"])
    sheet.append(["A1", 1, 10, "CNY", "PAID", datetime(2026, 1, 5, 10, 0)])
    sheet.append(["A1", 2, 10.0, "CNY", "REFUNDED", datetime(2026, 1, 5, 10, 5)])
    sheet.append(["A2", 1, 20, "USD", "PAID", datetime(2026, 1, 5, 10, 0)])
    path = tmp_path / "export.xlsx"
    book.save(path)

    report = await run_file(hub, path)
    assert report["complete"]
    assert report["differences"] == 1
    [item] = report["items"]
    assert (item["category"], item["key"], item["revision"]) == ("amount_mismatch", "A2", 1)
    assert "currency CNY sent, USD recorded" in item["detail"]
    assert report["totals"]["ours"] == {"count": 3, "amount": "40.00"}


async def test_ndjson_latest_revision_and_outside_period(
    make_hub: Callable[[str], Hub], clock: FakeClock, tmp_path: Path
) -> None:
    hub = make_hub(TOPOLOGY.replace(", revision: rev", ""))
    clock.set(datetime(2026, 1, 3, 2, 0, tzinfo=UTC))
    await delivered(hub, pay("OLD", "1.00", currency="CNY"))  # sent two days before
    clock.set(datetime(2026, 1, 5, 2, 0, tzinfo=UTC))
    await delivered(hub, pay("B1", "5.00", currency="CNY"))
    await delivered(hub, pay("B1", "7.00", currency="CNY"))  # revision 2 is what counts
    lines = [
        {"order_no": "B1", "amount": 7.00, "ccy": "CNY", "status": "PAID", "booked_at": DAY},
        {"order_no": "OLD", "amount": "1.00", "status": "PAID", "booked_at": DAY},
        {"order_no": "NEXT", "amount": "9", "status": "PAID", "booked_at": "2026-01-06T01:00"},
    ]
    path = tmp_path / "export.ndjson"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")

    report = await run_file(hub, path)
    assert report["differences"] == 0
    assert report["categories"]["timing"] == 1  # OLD: sent, but outside the period
    assert report["skipped_out_of_period"] == 1  # NEXT belongs to the next period
    assert report["totals"]["ours"] == {"count": 1, "amount": "7.00"}


async def test_incomplete_run_is_stored_as_incomplete(
    make_hub: Callable[[str], Hub], tmp_path: Path
) -> None:
    hub = make_hub(TOPOLOGY)
    await delivered(hub, pay("C1", "1.00"))
    path = tmp_path / "export.csv"
    path.write_text("order_no,amount,status\nC1,1.00,PAID\nC2,x,PAID\n", encoding="utf-8")
    report = await run_file(hub, path, columns={"date": "", "currency": "", "revision": ""})
    assert report["complete"] is False and report["problem_count"] == 1
    assert report["problems"] == ["line 3: malformed amount 'x'"]
    [stored] = reconcile(hub).runs()
    assert stored["complete"] is False and stored["problems"] == report["problems"]


def pages_handler(records: list[dict]) -> Callable[[Received], web.Response]:
    def handle(received: Received) -> web.Response:
        query = parse_qs(urlsplit(received.path).query)
        page, size = int(query["page"][0]), int(query["size"][0])
        assert query["since"] and query["until"]
        chunk = records[(page - 1) * size : page * size]
        return web.json_response({"data": {"items": chunk}})

    return handle


async def test_query_endpoint_pages(
    make_hub: Callable[[str], Hub], finance: Receiver, treasury: Receiver
) -> None:
    hub = make_hub(TOPOLOGY)
    await delivered(hub, *[pay(f"P{i}", "1.00", currency="CNY") for i in range(5)])
    records = [
        {"order_no": f"P{i}", "rev": 1, "amount": "1.00", "ccy": "CNY", "status": "PAID"}
        for i in range(5)
        if i != 3
    ]
    records.append({"order_no": "Z1", "rev": 1, "amount": "2.50", "status": "PAID"})
    finance.respond_with(pages_handler(records))
    service: Reconciler = reconcile(hub)
    since, until = period(hub)

    def work() -> dict:
        source = service.open_source(TREASURY_FLOW, None, None, since, until)
        return service.run(TREASURY_FLOW, source, since=since, until=until).to_json()

    report = await asyncio.to_thread(work)
    assert len(finance.requests) == 3  # pages of 2, 2 and 1
    assert {i["category"]: i["key"] for i in report["items"]} == {"missing": "P3", "extra": "Z1"}
    assert report["totals"]["theirs"] == {"count": 5, "amount": "6.50"}


async def test_api_upload_runs_and_repush(
    make_hub: Callable[[str], Hub], treasury: Receiver, clock: FakeClock
) -> None:
    hub = make_hub(TOPOLOGY)
    docs = await delivered(hub, pay("D1", "1.00"), pay("D2", "2.00"))
    api = await Api(hub).start()
    try:
        form = aiohttp.FormData()
        form.add_field(
            "file",
            b"order_no,amount,status\nD1,1.00,PAID\n",
            filename="treasury.csv",
            content_type="text/csv",
        )
        status, body, _ = await api.request(
            "POST",
            f"/api/v1/reconcile/{TREASURY_FLOW}",
            params={"date": DAY, "map": "date=,currency=,revision="},
            data=form,
        )
        assert status == 200, body
        assert isinstance(body, dict)
        assert body["categories"]["missing"] == 1 and body["source"] == "treasury.csv"
        run_id = body["run"]

        status, runs, _ = await api.request("GET", "/api/v1/reconcile/runs")
        assert status == 200 and isinstance(runs, list) and runs[0]["id"] == run_id
        status, one, _ = await api.request(
            "GET", f"/api/v1/reconcile/runs/{run_id}?category=missing&limit=10"
        )
        assert status == 200 and isinstance(one, dict)
        assert [i["key"] for i in one["items"]] == ["D2"]

        status, dry, _ = await api.request(
            "POST", f"/api/v1/reconcile/runs/{run_id}/repush?dry_run=true"
        )
        assert status == 200 and isinstance(dry, dict) and dry["repushed"] == 1
        status, done, _ = await api.request("POST", f"/api/v1/reconcile/runs/{run_id}/repush")
        assert status == 200 and isinstance(done, dict) and done["repushed"] == 1
        clock.advance(timedelta(seconds=1))
        await hub.engine.drain()
        assert treasury.keys().count(docs[1]["id"]) == 2

        status, bad, _ = await api.request("GET", "/api/v1/reconcile/runs/999")
        assert status == 404 and isinstance(bad, dict) and "error" in bad
        status, bad, _ = await api.request(
            "POST", f"/api/v1/reconcile/{TREASURY_FLOW}?date=tomorrow"
        )
        assert status == 400
    finally:
        await api.stop()


def test_migration_matches_the_tables(tmp_path: Path) -> None:
    from sqlalchemy import inspect

    from interlink.features.reconcile.tables import reconcile_items, reconcile_runs
    from interlink.store.db import open_store

    store = open_store(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        with store.reading() as conn:
            inspector = inspect(conn)
            for table in (reconcile_runs, reconcile_items):
                migrated = {c["name"] for c in inspector.get_columns(table.name)}
                assert migrated == {c.name for c in table.columns}
                indexes = {i["name"] for i in inspector.get_indexes(table.name)}
                assert indexes == {i.name for i in table.indexes}
    finally:
        store.close()
