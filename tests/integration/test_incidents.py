"""The incident register end to end: opened from alerts, joined by repeats, resolved with a real
PNG attached over the HTTP API; bad attachments refused with nothing stored; exports parse."""

from __future__ import annotations

import asyncio
import csv
import io
import struct
import zlib
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import aiohttp
import pytest

from interlink.clock import FakeClock
from interlink.features.alerts.service import alerts
from interlink.features.incidents.service import MAX_ATTACHMENT_BYTES, incidents
from interlink.service import Hub
from interlink.store.queries import events
from tests.conftest import ADMIN_TOKEN, Api, pay, submit
from tests.receiver import Receiver

FLOW = "trading-treasury"

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
flows:
  trading-treasury:
    from: trading
    to: treasury
    document: payment_order
    path: /payments
  trading-finance:
    from: trading
    to: finance
    document: payment_order
    path: /trades
alerts:
  aggregate: 5m
"""


def png(width: int = 2, height: int = 2) -> bytes:
    """A real PNG image: red pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
async def served(make_hub: Callable[[str], Hub]) -> AsyncIterator[tuple[Hub, Api]]:
    hub = make_hub(TOPOLOGY)
    server = await Api(hub).start()
    yield hub, server
    await server.stop()


async def upload(api: Api, incident_id: int, name: str, data: bytes) -> tuple[int, Any]:
    form = aiohttp.FormData()
    form.add_field("file", io.BytesIO(data), filename=name, content_type="application/octet-stream")
    status, body, _ = await api.request(
        "POST", f"/api/v1/incidents/{incident_id}/attachments", data=form
    )
    return status, body


async def test_auto_incident_opens_repeats_join_and_it_resolves_with_an_attachment(
    served: tuple[Hub, Api], treasury: Receiver, clock: FakeClock
) -> None:
    hub, api = served
    treasury.respond(422, "unknown currency")
    [first] = await submit(hub, pay("A-1"))
    await hub.engine.step()
    await asyncio.to_thread(alerts(hub).run_once)

    status, body, _ = await api.request("GET", "/api/v1/incidents?status=open")
    assert status == 200
    [incident] = body["items"]  # type: ignore[index]
    assert incident["title"] == "delivery rejected: trading-treasury"
    assert incident["registered_by"] == "alerter"
    assert incident["systems"] == ["treasury", "trading"]
    assert incident["documents"] == [first["id"]]
    assert "unknown currency" in incident["description"]

    # repeats join the open incident: folded ones at the end of the interval
    await submit(hub, *(pay(f"A-{i}") for i in range(2, 6)))
    await hub.engine.step()
    await asyncio.to_thread(alerts(hub).run_once)
    clock.advance(timedelta(minutes=5))
    await asyncio.to_thread(alerts(hub).run_once)
    status, body, _ = await api.request("GET", f"/api/v1/incidents/{incident['id']}")
    assert body["occurrences"] == 5  # type: ignore[index]
    assert [e["kind"] for e in body["timeline"]] == ["alert", "alert"]  # type: ignore[index]
    assert "(4 more)" in body["timeline"][1]["text"]  # type: ignore[index]
    assert len(incidents(hub).search()) == 1

    # resolving without a resolution is refused
    path = f"/api/v1/incidents/{incident['id']}"
    status, body, _ = await api.request("PATCH", path, json={"status": "resolved"})
    assert status == 400 and "resolution" in body["error"]["message"]  # type: ignore[index]
    status, body, _ = await api.request(
        "PATCH", path, json={"status": "resolved", "resolution": "   "}
    )
    assert status == 400

    image = png()
    status, attached = await upload(api, incident["id"], "screenshot.png", image)
    assert status == 201, attached
    status, body, _ = await api.request(
        "PATCH",
        path,
        json={"comment": "treasury lacks CNH", "assignee": "li.wei"},
    )
    assert status == 200 and body["assignee"] == "li.wei"  # type: ignore[index]
    status, body, _ = await api.request(
        "PATCH", path, json={"status": "resolved", "resolution": "treasury added CNH"}
    )
    assert status == 200
    assert body["status"] == "resolved" and body["resolution"] == "treasury added CNH"  # type: ignore[index]
    # The API names the caller: here the break-glass admin token the `api` fixture sends.
    assert body["resolved_by"] == "api:admin"  # type: ignore[index]
    kinds = [(e["kind"], e["actor"]) for e in body["timeline"]]  # type: ignore[index]
    assert ("comment", "api:admin") in kinds and ("assign", "api:admin") in kinds
    assert kinds[-1] == ("status", "api:admin")

    assert api.session is not None
    async with api.session.get(
        f"{api.url}/api/v1/incidents/{incident['id']}/attachments/{attached['id']}",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    ) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "image/png"
        assert await response.read() == image
    stored = list((hub.topology.path.parent / "interlink-data").rglob("*.png"))
    assert [p.read_bytes() for p in stored] == [image]

    # a new rejection after the resolution opens a new incident
    clock.advance(timedelta(minutes=30))
    await submit(hub, pay("A-99"))
    await hub.engine.step()
    await asyncio.to_thread(alerts(hub).run_once)
    assert [i["status"] for i in incidents(hub).search()] == ["open", "resolved"]


async def test_downstream_back_joins_the_down_incident(
    served: tuple[Hub, Api], finance: Receiver, clock: FakeClock
) -> None:
    hub, _ = served
    now = clock.now()
    hub.store.write_sync(
        lambda conn: events.add_event(conn, now, "circuit_opened", {"detail": "refused"}, "finance")
    )
    await asyncio.to_thread(alerts(hub).run_once)
    clock.advance(timedelta(minutes=1))
    later = clock.now()
    hub.store.write_sync(
        lambda conn: events.add_event(
            conn, later, "circuit_closed", {"detail": "HTTP 200"}, "finance"
        )
    )
    await asyncio.to_thread(alerts(hub).run_once)
    [incident] = incidents(hub).search()
    full = incidents(hub).get(incident["id"])
    assert full["category"] == "downstream_down" and full["severity"] == "high"
    assert [e["text"] for e in full["timeline"]][-1] == "downstream back"


@pytest.mark.parametrize(
    ("name", "data", "status"),
    [
        ("big.png", png() + b"\x00" * MAX_ATTACHMENT_BYTES, 413),
        ("tool.exe", b"MZ\x90\x00\x03\x00\x00\x00" + bytes(range(256)), 400),
        ("fake.png", b"<html><script>alert(1)</script></html>", 400),  # text named .png
        ("page.html", b"<html></html>", 400),
        ("shot.txt", png(), 400),  # a PNG named .txt
        ("empty.txt", b"", 400),
    ],
)
async def test_bad_attachments_are_refused_with_nothing_stored(
    served: tuple[Hub, Api], name: str, data: bytes, status: int
) -> None:
    hub, api = served
    incident = incidents(hub).new(title="a problem", actor="test")
    got, body = await upload(api, incident["id"], name, data)
    assert got == status, body
    assert incidents(hub).get(incident["id"])["attachments"] == []
    data_dir = hub.topology.path.parent / "interlink-data"
    assert not data_dir.exists() or not any(p.is_file() for p in data_dir.rglob("*"))


async def test_manual_incidents_search_export_and_stats(
    served: tuple[Hub, Api], clock: FakeClock
) -> None:
    hub, api = served
    status, body, _ = await api.request(
        "POST",
        "/api/v1/incidents",
        json={
            "title": "Finance books, double entry",
            "flows": ["trading-finance"],
            "severity": "high",
            "category": "data",
            "description": 'amounts "doubled", | pipes, and\nnew lines',
        },
    )
    assert status == 201, body
    first = body["id"]  # type: ignore[index]
    assert body["systems"] == ["finance", "trading"]  # type: ignore[index]
    clock.advance(timedelta(hours=2))
    status, body, _ = await api.request(
        "POST", "/api/v1/incidents", json={"title": "Treasury slow", "systems": ["treasury"]}
    )
    assert status == 201
    for bad in (
        {"title": ""},
        {"title": "x", "severity": "apocalyptic"},
        {"title": "x", "systems": ["nowhere"]},
    ):
        status, _, _ = await api.request("POST", "/api/v1/incidents", json=bad)
        assert status in (400, 404), bad
    incidents(hub).comment(first, "the ledger import ran twice", "test")
    clock.advance(timedelta(hours=1))
    incidents(hub).resolve(first, "import made idempotent", "test")

    async def titles(query: str) -> list[str]:
        status, body, _ = await api.request("GET", f"/api/v1/incidents?{query}")
        assert status == 200, body
        return [i["title"] for i in body["items"]]  # type: ignore[index]

    assert await titles("q=LEDGER") == ["Finance books, double entry"]  # timeline text
    assert await titles("system=treasury") == ["Treasury slow"]
    assert await titles("flow=trading-finance&status=resolved") == ["Finance books, double entry"]
    assert await titles("since=2026-01-05T11:00") == ["Treasury slow"]  # Asia/Shanghai
    assert await titles("until=2026-01-05T11:00") == ["Finance books, double entry"]
    status, _, _ = await api.request("GET", "/api/v1/incidents?status=closed")
    assert status == 400

    status, text, headers = await api.request("GET", "/api/v1/incidents/export?format=csv")
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(str(text))))
    assert [r["title"] for r in rows] == ["Finance books, double entry", "Treasury slow"]
    assert rows[0]["description"] == 'amounts "doubled", | pipes, and\nnew lines'
    assert rows[0]["resolution"] == "import made idempotent"
    status, text, _ = await api.request("GET", "/api/v1/incidents/export?format=md")
    lines = str(text).strip().splitlines()
    assert len(lines) == 4 and lines[1].startswith("|---")
    cells = [len(_md_cells(line)) for line in lines]
    assert len(set(cells)) == 1, cells
    status, _, _ = await api.request("GET", "/api/v1/incidents/export?format=xls")
    assert status == 400

    status, stats, _ = await api.request("GET", "/api/v1/incidents/stats")
    assert status == 200
    assert stats["open"] == 1 and stats["total"] == 2  # type: ignore[index]
    assert stats["mttr_hours"] == 3.0  # type: ignore[index]
    assert stats["mttr_hours_by_category"] == {"data": 3.0}  # type: ignore[index]
    assert stats["mttr_hours_by_system"] == {"finance": 3.0, "trading": 3.0}  # type: ignore[index]


def _md_cells(line: str) -> list[str]:
    inner = line.strip()[1:-1]
    cells, current, escaped = [], "", False
    for ch in inner:
        if ch == "|" and not escaped:
            cells.append(current)
            current = ""
        else:
            current += ch
        escaped = ch == "\\"
    cells.append(current)
    return cells


async def test_unknown_incident_and_attachment(served: tuple[Hub, Api]) -> None:
    _, api = served
    status, _, _ = await api.request("GET", "/api/v1/incidents/999")
    assert status == 404
    status, _ = await upload(api, 999, "a.png", png())
    assert status == 404
    status, _, _ = await api.request("GET", "/api/v1/incidents/999/attachments/1")
    assert status == 404
