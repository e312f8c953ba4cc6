"""The maintenance API: refusals with nothing stored, force and short notice, observed-traffic
checks in a dry run, cancel, and the iCalendar feed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest

from interlink.clock import FakeClock
from interlink.service import Hub
from tests.conftest import ADMIN_TOKEN, TOPOLOGY, Api, pay, submit

WINDOWS = TOPOLOGY.replace(
    "    secret_env: TEST_TREASURY_SECRET\n",
    "    secret_env: TEST_TREASURY_SECRET\n"
    "    maintenance_notice: 24h\n"
    '    peak_hours: ["Mon-Fri 09:00-11:30", "Mon-Fri 14:00-17:30"]\n',
)
PATH = "/api/v1/maintenance"


@pytest.fixture
async def hub_api(make_hub: Callable[[str], Hub]) -> AsyncIterator[tuple[Hub, Api]]:
    hub = make_hub(WINDOWS)
    server = await Api(hub).start()
    yield hub, server
    await server.stop()


def body(start: str, end: str, system: str = "treasury", **extra: object) -> dict:
    return {"system": system, "start": start, "end": end, "reason": "release 4.2", **extra}


# The clock stands at Monday 2026-01-05 10:00 in Shanghai.
REFUSALS = [
    (body("2026-01-07T22:00", "2026-01-07T20:00"), "the end must be after the start"),
    (body("2026-01-04T20:00", "2026-01-04T22:00"), "the window is in the past"),
    (body("2026-01-05T09:00", "2026-01-07T22:00"), "already started"),
    (body("2026-01-07T20:00", "2026-01-07T22:00", "nosuch"), "unknown system 'nosuch'"),
    (body("2026-01-07T20:00", "2026-01-07T22:00", "trading"), "has no url"),
    (body("2026-01-05T12:00", "2026-01-05T13:00"), "short notice: treasury asks for 1d"),
    (body("2026-01-07T10:00", "2026-01-07T12:00"), "declared peak hours"),
    (body("Wednesday 8pm", "2026-01-07T22:00"), "is not an ISO 8601 time"),
    (body("2026-01-07T20:00", "2026-01-07T22:00", reason="  "), "give a reason"),
]


async def test_refusals_store_nothing(hub_api: tuple[Hub, Api]) -> None:
    hub, api = hub_api
    for request_body, message in REFUSALS:
        status, answer, _ = await api.request("POST", PATH, json=request_body)
        assert status == 400, (request_body, answer)
        assert message in answer["error"]["message"], answer  # type: ignore[index]
    _, listed, _ = await api.request("GET", PATH + "?all=true")
    assert listed == {"items": []}
    assert [e for e in hub.events() if e["kind"].startswith("maintenance")] == []
    assert hub.audit() == []


async def test_overlap_refused_even_with_force(hub_api: tuple[Hub, Api]) -> None:
    _hub, api = hub_api
    status, first, _ = await api.request(
        "POST", PATH, json=body("2026-01-07T20:00", "2026-01-07T22:00")
    )
    assert status == 201, first
    status, answer, _ = await api.request(
        "POST", PATH, json=body("2026-01-07T21:00", "2026-01-07T23:00", force=True)
    )
    assert status == 400
    assert f"overlaps window {first['id']} of treasury" in answer["error"]["message"]  # type: ignore[index]
    # Back to back is not an overlap; another system is not either.
    status, _, _ = await api.request(
        "POST", PATH, json=body("2026-01-07T22:00", "2026-01-07T23:00")
    )
    assert status == 201
    status, _, _ = await api.request(
        "POST", PATH, json=body("2026-01-07T21:00", "2026-01-07T23:00", "finance")
    )
    assert status == 201
    _, listed, _ = await api.request("GET", PATH)
    assert len(listed["items"]) == 3  # type: ignore[index]


async def test_forced_short_notice_is_marked_everywhere(
    hub_api: tuple[Hub, Api], clock: FakeClock
) -> None:
    hub, api = hub_api
    status, window, _ = await api.request(
        "POST", PATH, json=body("2026-01-05T12:00", "2026-01-05T13:00", force=True)
    )
    assert status == 201, window
    assert window["short_notice"] is True  # type: ignore[index]
    assert window["start"] == "2026-01-05T04:00:00+00:00"  # type: ignore[index]
    assert window["start_local"] == "2026-01-05T12:00:00+08:00"  # type: ignore[index]
    _, listed, _ = await api.request("GET", PATH)
    assert listed["items"][0]["short_notice"] is True  # type: ignore[index]
    [announced] = [e for e in hub.events() if e["kind"] == "maintenance_announced"]
    assert announced["detail"]["short_notice"] is True
    _, text, _headers = await api.request("GET", PATH + ".ics")
    assert "SUMMARY:treasury maintenance (short notice)" in text  # type: ignore[operator]
    clock.advance(timedelta(hours=2, minutes=30))
    _, status_body, _ = await api.request("GET", "/api/v1/status")
    assert status_body["systems"]["treasury"]["window"] == {  # type: ignore[index]
        "id": window["id"],  # type: ignore[index]
        "start": "2026-01-05T04:00:00+00:00",
        "end": "2026-01-05T05:00:00+00:00",
        "reason": "release 4.2",
        "short_notice": True,
    }


async def test_dry_run_reports_observed_traffic_and_stores_nothing(
    hub_api: tuple[Hub, Api], clock: FakeClock
) -> None:
    hub, api = hub_api
    now = clock.now()
    # Three weeks of history: Wednesdays 20:00-21:00 (Shanghai) are busy, other hours light.
    for weeks_ago in (1, 2, 3):
        wednesday_8pm = now + timedelta(days=2, hours=10) - timedelta(weeks=weeks_ago)
        clock.set(wednesday_8pm)
        await submit(hub, *(pay(f"W{weeks_ago}-{i}") for i in range(30)))
        for hours in range(-30, 30, 3):
            if hours:
                clock.set(wednesday_8pm + timedelta(hours=hours))
                await submit(hub, pay(f"L{weeks_ago}{hours}"))
    clock.set(now)
    [due] = await submit(hub, pay("DUE", pay_before="2026-01-07T20:30:00+08:00"))

    status, checks, _ = await api.request(
        "POST", PATH, json=body("2026-01-07T20:00", "2026-01-07T21:00", dry_run=True)
    )
    assert status == 200, checks
    assert checks["dry_run"] is True and checks["ok"] is True  # type: ignore[index]
    assert checks["busy_hours"] == ["Wed 20:00-21:00"]  # type: ignore[index]
    assert any("busiest hours" in w for w in checks["warnings"])  # type: ignore[index]
    quiet = checks["quietest_slot"]  # type: ignore[index]
    assert quiet is not None and quiet["expected_deliveries"] == 0
    assert quiet["start_local"].startswith("2026-01-0")
    assert checks["expected_backlog"] == {"trading-treasury": 30}  # type: ignore[index]
    assert checks["deadlines"]["total"] == 1  # type: ignore[index]
    assert checks["deadlines"]["documents"][0]["document_id"] == due["id"]  # type: ignore[index]
    assert checks["notice"]["short"] is False  # type: ignore[index]

    status, peak, _ = await api.request(
        "POST", PATH, json=body("2026-01-07T10:00", "2026-01-07T12:00", dry_run=True)
    )
    assert status == 200 and peak["ok"] is False  # type: ignore[index]
    assert peak["needs_force"] and peak["peak_overlaps"]  # type: ignore[index]
    _, listed, _ = await api.request("GET", PATH + "?all=true")
    assert listed == {"items": []}


async def test_cancel_and_calendar_feed(hub_api: tuple[Hub, Api]) -> None:
    hub, api = hub_api
    long_reason = "database upgrade to 16.4 with a failover rehearsal; 中文说明 " * 3
    _, kept, _ = await api.request(
        "POST", PATH, json=body("2026-01-07T20:00", "2026-01-07T22:00", reason=long_reason)
    )
    _, gone, _ = await api.request("POST", PATH, json=body("2026-01-08T20:00", "2026-01-08T22:00"))
    status, cancelled, _ = await api.request("DELETE", f"{PATH}/{gone['id']}")  # type: ignore[index]
    assert status == 200 and cancelled["state"] == "cancelled"  # type: ignore[index]
    status, again, _ = await api.request("DELETE", f"{PATH}/{gone['id']}")  # type: ignore[index]
    assert status == 400 and "already cancelled" in again["error"]["message"]  # type: ignore[index]
    status, _, _ = await api.request("DELETE", f"{PATH}/999")
    assert status == 404
    _, listed, _ = await api.request("GET", PATH)
    assert [w["id"] for w in listed["items"]] == [kept["id"]]  # type: ignore[index]
    kinds = [e["kind"] for e in hub.events() if e["kind"].startswith("maintenance")]
    assert sorted(kinds) == [
        "maintenance_announced",
        "maintenance_announced",
        "maintenance_cancelled",
    ]

    assert api.session is not None
    async with api.session.get(
        api.url + PATH + ".ics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    ) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/calendar")
        raw = await response.read()
    assert raw.endswith(b"\r\n") and b"\n" not in raw.replace(b"\r\n", b"")
    physical = raw.split(b"\r\n")[:-1]
    assert all(len(line) <= 75 for line in physical)
    assert any(line.startswith(b" ") for line in physical)  # the long description folded
    lines = raw.replace(b"\r\n ", b"").decode().split("\r\n")[:-1]
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-1] == "END:VCALENDAR"
    events: list[dict[str, str]] = []
    for line in lines:
        if line == "BEGIN:VEVENT":
            events.append({})
        elif events and ":" in line and line != "END:VEVENT":
            name, _, value = line.partition(":")
            events[-1][name] = value
    assert [e["UID"].split("@")[0] for e in events] == [
        f"maintenance-{kept['id']}",  # type: ignore[index]
        f"maintenance-{gone['id']}",  # type: ignore[index]
    ]
    assert [e["STATUS"] for e in events] == ["CONFIRMED", "CANCELLED"]
    assert events[0]["DTSTART"] == "20260107T120000Z" and events[0]["DTEND"] == "20260107T140000Z"
    assert all(
        set(e) >= {"UID", "DTSTAMP", "DTSTART", "DTEND", "SUMMARY", "DESCRIPTION"} for e in events
    )
    assert "中文说明" in events[0]["DESCRIPTION"]
    assert "Affected flows: trading-treasury" in events[0]["DESCRIPTION"]
