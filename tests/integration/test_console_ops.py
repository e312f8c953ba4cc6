"""The console's pages over the capabilities (maintenance, incidents, contracts), over HTTP:
each calls the capability's service, and says "not installed" when it is missing."""

from __future__ import annotations

import html
import json
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import aiohttp
import pytest

from interlink.clock import FakeClock
from interlink.service import Hub
from tests.conftest import Api, pay, submit
from tests.console_support import CONSOLE_TOPOLOGY, ENV, Browser, require_dot
from tests.receiver import Receiver


@pytest.fixture
async def console(
    monkeypatch: pytest.MonkeyPatch, make_hub: Callable[[str], Hub]
) -> AsyncIterator[Api]:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    server = await Api(make_hub(CONSOLE_TOPOLOGY)).start()
    yield server
    await server.stop()


@pytest.fixture
async def duty(console: Api) -> AsyncIterator[Browser]:
    b = Browser(console.url)
    assert await b.sign_in("duty") == 303
    yield b
    await b.close()


def needs(hub: Hub, name: str) -> None:
    if name not in hub.capabilities:
        pytest.skip(f"{name} capability not installed")


async def test_a_missing_capability_shows_not_installed(console: Api, duty: Browser) -> None:
    for name in ("maintenance", "incidents", "contracts"):
        console.hub.capabilities.pop(name, None)
        status, body, _ = await duty.get(f"/{name}")
        assert status == 200 and f"The {name} capability is not installed" in body
    status, body, _ = await duty.get("/")
    assert status == 200 and "not installed" in body


async def test_announce_shows_the_check_then_cancel(console: Api, duty: Browser) -> None:
    needs(console.hub, "maintenance")
    tz = console.hub.topology.tz
    day = (console.hub.clock.now().astimezone(tz) + timedelta(days=3)).date()
    form = {"system": "treasury", "start": f"{day}T10:00", "end": f"{day}T11:00", "reason": "x"}
    csrf = await duty.csrf("/maintenance")
    status, body, _ = await duty.post("/maintenance/preview", {**form, "csrf": csrf})
    assert status == 200 and "peak hours" in body and 'name="force"' in body
    status, body, _ = await duty.post("/maintenance", {**form, "csrf": csrf})
    assert status == 400 and "peak hours" in body  # not forced: refused, nothing written
    status, _, headers = await duty.post("/maintenance", {**form, "csrf": csrf, "force": "1"})
    assert status == 303
    [window] = console.hub.capabilities["maintenance"].windows()
    _, body, _ = await duty.get(headers["Location"])
    assert f'id="window-{window["id"]}"' in body and "console:duty" in body
    status, _, _ = await duty.post(f"/maintenance/{window['id']}/cancel", {"csrf": csrf})
    assert status == 303
    assert console.hub.capabilities["maintenance"].windows() == []
    actions = [a["action"] for a in console.hub.audit(target="maintenance")]
    assert actions == ["maintenance_cancel", "maintenance_add"]
    status, body, _ = await duty.post(
        "/maintenance/preview", {**form, "start": "soon", "csrf": csrf}
    )
    assert status == 400 and "start" in body


async def test_incident_register_comment_assign_export(console: Api, duty: Browser) -> None:
    needs(console.hub, "incidents")
    csrf = await duty.csrf("/incidents")
    status, _, headers = await duty.post(
        "/incidents",
        {"csrf": csrf, "title": "Late payments", "severity": "high", "flows": "trading-treasury"},
    )
    assert status == 303
    path = headers["Location"]
    assert (await duty.post(path + "/comment", {"csrf": csrf, "text": "looking"}))[0] == 303
    assert (await duty.post(path + "/update", {"csrf": csrf, "assignee": "li"}))[0] == 303
    status, body, _ = await duty.post(path + "/update", {"csrf": csrf, "status": "resolved"})
    assert status == 400 and "resolution" in body
    upload = aiohttp.FormData()
    upload.add_field("csrf", csrf)
    upload.add_field("file", b"MZ\x90\x00", filename="shot.png")  # not a PNG inside
    status, body, _ = await duty.post(path + "/attach", upload)
    assert (
        status in (400, 422)
        and "attach"
        not in console.hub.capabilities["incidents"].get(int(path.rsplit("/", 1)[1]))["timeline"][
            -1
        ]["text"]
    )
    _, body, _ = await duty.get(path)
    assert "looking" in body and "li" in body and "console:duty" in body
    _, body, _ = await duty.get("/incidents?q=Late")
    assert "Late payments" in body
    _, body, _ = await duty.get("/incidents?q=nothing-like-it")
    assert "Late payments" not in body
    status, body, headers = await duty.get("/incidents/export?format=csv")
    assert (
        status == 200 and "Late payments" in body and "attachment" in headers["Content-Disposition"]
    )


async def test_contract_check_shows_the_impact_report(console: Api, duty: Browser) -> None:
    needs(console.hub, "contracts")
    _, body, _ = await duty.get("/contracts")
    assert "payment_order" in body
    csrf = await duty.csrf("/contracts/payment_order")
    schema = {
        "type": "object",
        "required": ["order_no", "amount", "currency"],
        "properties": {"order_no": {"type": "string"}, "currency": {"type": "string"}},
    }
    status, body, _ = await duty.post(
        "/contracts/payment_order/check", {"csrf": csrf, "schema": json.dumps(schema)}
    )
    assert status == 200 and 'id="verdict"' in body and "Impact report" in body
    upload = aiohttp.FormData()
    upload.add_field("csrf", csrf)
    upload.add_field("schema", "")
    upload.add_field("file", json.dumps(schema).encode(), filename="proposed.json")
    status, body, _ = await duty.post("/contracts/payment_order/check", upload)
    assert status == 200 and 'id="verdict"' in body and "currency" in body
    status, body, _ = await duty.post(
        "/contracts/payment_order/check", {"csrf": csrf, "schema": "{not json"}
    )
    assert status == 400 and "not JSON" in body
    status, _, _ = await duty.get("/contracts/nope")
    assert status == 404


async def test_overview_shows_failing_flows_and_deadlines_at_risk(
    console: Api, duty: Browser, treasury: Receiver, finance: Receiver
) -> None:
    require_dot()
    needs(console.hub, "deadlines")
    due = (console.hub.clock.now() + timedelta(minutes=30)).isoformat()
    treasury.respond(503, "deploying", times=10)
    finance.respond(422, "account closed", times=1)
    await submit(console.hub, pay("DL-1", pay_before=due))
    await console.hub.engine.drain()
    _, body, _ = await duty.get("/")
    svg = html.unescape(body)
    assert 'id="flow-trading-finance" class="edge flow state-failing"' in svg
    assert 'id="flow-trading-treasury" class="edge flow state-flowing"' in svg
    deadlines = body[body.index("Deadlines at risk") :]
    assert "DL-1" in deadlines[: deadlines.index("</section>")]


async def test_a_past_window_shows_its_drain_report(
    console: Api, duty: Browser, clock: FakeClock
) -> None:
    needs(console.hub, "maintenance")
    hub = console.hub
    now = clock.now()
    hub.capabilities["maintenance"].add(
        "finance", now + timedelta(minutes=5), now + timedelta(minutes=35), "patch", "ops"
    )
    clock.advance(timedelta(minutes=10))
    await hub.engine.step()  # the window starts: finance is held
    await submit(hub, pay("W-1"))
    await hub.engine.drain()
    for minutes in (30, 1):  # past the end: released and delivered; then the drain check
        clock.advance(timedelta(minutes=minutes))
        await hub.engine.drain()
        await hub.engine.step()
    _, body, _ = await duty.get("/maintenance")
    row = body[body.index('id="window-1"') :]
    row = row[: row.index("</tr>")]
    assert "ended" in row and "1 held, all delivered by" in row
