"""The console for the person on duty (issue 14), over HTTP against a real hub and loopback
downstreams: what is stuck and why in numbers, why a downstream is down, risky actions that
ask first, times with their zone, readable audit details, grouped events, a graph that stays
coloured while a problem lasts, who to call, and HTML answers to malformed addresses."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest

from interlink.clock import FakeClock
from interlink.service import Hub
from interlink.web.console import graph
from interlink.web.console.activity import grouped
from interlink.web.console.render import details, local_time
from tests.conftest import FINANCE_FLOW, TREASURY_FLOW, Api, delivery_of, pay, submit
from tests.console_support import CONSOLE_TOPOLOGY, ENV, Browser, require_dot
from tests.receiver import Receiver

DUTY_TOPOLOGY = CONSOLE_TOPOLOGY.replace(
    "contacts: [{{role: ops, name: Li Lei, email: treasury-ops@example.com}}]",
    "contacts: [{{role: dev, name: Han Meimei, email: treasury-dev@example.com}}, "
    "{{role: ops, name: Li Lei, email: treasury-ops@example.com, "
    "phone: '+86 21 5555 0101', on_call: 24/7}}]",
)


@pytest.fixture
async def console(
    monkeypatch: pytest.MonkeyPatch, make_hub: Callable[[str], Hub]
) -> AsyncIterator[Api]:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    assert DUTY_TOPOLOGY != CONSOLE_TOPOLOGY
    server = await Api(make_hub(DUTY_TOPOLOGY)).start()
    yield server
    await server.stop()


async def _signed_in(console: Api, user: str) -> AsyncIterator[Browser]:
    b = Browser(console.url)
    assert await b.sign_in(user) == 303
    yield b
    await b.close()


@pytest.fixture
async def duty(console: Api) -> AsyncIterator[Browser]:
    async for b in _signed_in(console, "duty"):
        yield b


@pytest.fixture
async def auditor(console: Api) -> AsyncIterator[Browser]:
    async for b in _signed_in(console, "auditor"):
        yield b


def section(body: str, marker: str) -> str:
    """The HTML of the card that contains ``marker``, up to its end."""
    start = body.index(marker)
    return body[start : body.index("</section>", start)]


def text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", fragment))


async def _down_with_a_blocked_revision(hub: Hub, treasury: Receiver) -> None:
    """Treasury refuses connections: its circuit opens, deliveries are held downstream_down,
    and the second revision of ORD-1 waits behind the first (blocked)."""
    await treasury.refuse()
    await submit(hub, pay("ORD-1"), pay("ORD-2"), pay("ORD-3"), pay("ORD-4"))
    await submit(hub, pay("ORD-1", amount="20.00"))
    await hub.engine.drain()
    assert hub.status()["systems"]["treasury"]["circuit"] == "open"


# -- 1. what is stuck and why, in numbers -------------------------------------------------------


async def test_a_flow_shows_every_reason_with_its_count_and_why_its_downstream_is_down(
    console: Api, duty: Browser, treasury: Receiver
) -> None:
    hub = console.hub
    await _down_with_a_blocked_revision(hub, treasury)
    held = hub.reasons(TREASURY_FLOW)["held"]
    assert held.get("blocked") == 1 and held.get("downstream_down", 0) >= 1, held

    _, body, _ = await duty.get(f"/flows/{TREASURY_FLOW}")
    stuck = section(body, 'id="stuck"')
    for reason, count in held.items():
        assert f'data-reason="{reason}">{count}</td>' in stuck, (reason, stuck)
    assert "blocked behind an earlier revision" in stuck and "downstream down" in stuck
    assert "?status=held&amp;reason=blocked#deliveries" in stuck

    why = hub.why_down("treasury")
    assert why is not None and why["last_error"] and why["next_probe_at"]
    card = text(section(body, 'id="why-down"'))
    assert "Why treasury is down" in card
    assert why["last_error"] in card
    assert f"Next probe at {local_time(why['next_probe_at'], hub.topology.tz)}" in card
    assert f"{why['failures']} failures in a row" in card
    assert "Li Lei" in card and "+86 21 5555 0101" in card  # who to call, on call first

    _, systems, _ = await duty.get("/systems")
    treasury_card = text(section(systems, 'id="treasury"'))
    assert "Why treasury is down" in treasury_card and why["last_error"] in treasury_card
    assert "Why finance is down" not in systems


async def test_filtered_lists_show_their_total(
    console: Api, duty: Browser, treasury: Receiver
) -> None:
    hub = console.hub
    await _down_with_a_blocked_revision(hub, treasury)
    held = hub.reasons(TREASURY_FLOW)["held"]
    cases = {
        "?status=held": sum(held.values()),
        "?status=held&reason=blocked": 1,
        "?status=held&reason=downstream_down": held["downstream_down"],
        "?key=ORD-1": 2,
        "?status=dead": 0,
        "?status=delivered": 0,
        "?reason=blocked": 1,
    }
    for query, expected in cases.items():
        _, body, _ = await duty.get(f"/flows/{TREASURY_FLOW}{query}")
        total = text(section(body, 'id="deliveries"'))
        assert f"Matching deliveries: {expected}" in total, (query, expected)
    _, unfiltered, _ = await duty.get(f"/flows/{TREASURY_FLOW}")
    assert 'id="total"' not in unfiltered  # the counts above say it; no count of everything


# -- 3. risky actions ask first --------------------------------------------------------------


async def test_repush_of_a_delivered_row_asks_first_and_dead_goes_at_once(
    console: Api, duty: Browser, finance: Receiver
) -> None:
    hub = console.hub
    [ok] = await submit(hub, pay("OK-1"))
    await hub.engine.drain()
    delivered = delivery_of(hub, ok["id"], FINANCE_FLOW)
    assert delivered.status == "delivered"
    csrf = await duty.csrf(f"/flows/{FINANCE_FLOW}")

    status, body, _ = await duty.post(f"/deliveries/{delivered.id}/repush", {"csrf": csrf})
    assert status == 200 and 'id="confirm-again"' in body
    assert "already delivered" in body and 'name="again" value="1"' in body
    assert hub.audit(target=f"delivery:{delivered.id}") == []
    assert delivery_of(hub, ok["id"], FINANCE_FLOW).status == "delivered"

    status, _, headers = await duty.post(
        f"/deliveries/{delivered.id}/repush", {"csrf": csrf, "again": "1"}
    )
    assert status == 303 and "msg=repush.one_done" in headers["Location"]
    [record] = hub.audit(target=f"delivery:{delivered.id}")
    assert record["detail"]["from"] == "delivered"
    await hub.engine.drain()  # sent once more, delivered again

    finance.respond(422, "account closed", times=1)
    [bad] = await submit(hub, pay("BAD-1"))
    await hub.engine.drain()
    dead = delivery_of(hub, bad["id"], FINANCE_FLOW)
    assert dead.status == "dead"
    status, _, _ = await duty.post(f"/deliveries/{dead.id}/repush", {"csrf": csrf})
    assert status == 303  # a dead one needs no second click


async def test_repush_all_keeps_the_dead_filter_and_cancel_window_asks(
    console: Api, duty: Browser, finance: Receiver
) -> None:
    hub = console.hub
    finance.respond(422, "account closed", times=2)
    await submit(hub, pay("BAD-1"), pay("BAD-2"))
    await hub.engine.drain()
    csrf = await duty.csrf(f"/flows/{FINANCE_FLOW}")
    status, _, headers = await duty.post(
        f"/flows/{FINANCE_FLOW}/repush", {"csrf": csrf, "reason": "rejected"}
    )
    assert status == 303
    location = headers["Location"]
    assert location.startswith(f"/flows/{FINANCE_FLOW}?")
    assert "status=dead" in location and "reason=rejected" in location and "count=2" in location
    _, body, _ = await duty.get(location)
    assert '<option value="dead" selected>' in body
    assert "2 deliveries re-pushed" in body

    if "maintenance" not in hub.capabilities:
        pytest.skip("maintenance capability not installed")
    now = hub.clock.now()
    hub.capabilities["maintenance"].add(
        "finance", now + timedelta(days=2), now + timedelta(days=2, hours=1), "patch", "ops"
    )
    _, page, _ = await duty.get("/maintenance")
    row = page[page.index('id="window-1"') :]
    row = row[: row.index("</tr>")]
    # The cancel button sits inside a closed <details>: two clicks, with the question
    # (which window, when) between them; no script needed.
    assert row.index("<details") < row.index('action="/maintenance/1/cancel"')
    assert "Cancel window 1 (finance" in html.unescape(row)


# -- 4. times, audit details, recent events ---------------------------------------------------


def test_every_time_carries_the_offset_of_the_topology_zone() -> None:
    from zoneinfo import ZoneInfo

    at = datetime(2026, 1, 31, 1, 0, tzinfo=UTC)
    assert local_time(at, ZoneInfo("Asia/Shanghai")) == "2026-01-31 09:00:00 +08:00"
    assert local_time(at.isoformat(), ZoneInfo("Europe/Berlin")) == "2026-01-31 02:00:00 +01:00"
    assert local_time(None, ZoneInfo("Asia/Shanghai")) == ""


def test_details_read_as_key_value_lines() -> None:
    found = details(
        {
            "count": 2,
            "dry_run": False,
            "filter": {"flow": "f", "status": "dead", "key": None},
            "sample": [1, 2],
            "note": "",
        }
    )
    assert found == [
        ("count", "2"),
        ("dry_run", "no"),
        ("filter", "flow: f, status: dead"),
        ("sample", "1, 2"),
    ]
    assert details({"ids": list(range(12))})[0][1].endswith(", … (12)")


def test_repeated_events_fold_into_one_line_with_a_count() -> None:
    def event(i: int, kind: str, detail: str) -> dict[str, object]:
        return {
            "id": i,
            "at": f"2026-01-31T09:{i:02d}:00+00:00",
            "kind": kind,
            "system": "finance",
            "flow": "f",
            "detail": {"detail": detail},
        }

    newest_first = [event(20 - i, "delivery_rejected", "422 account closed") for i in range(10)]
    newest_first.insert(3, event(30, "circuit_opened", "connection refused"))
    found = grouped(newest_first, limit=10)
    assert [(g["kind"], g["count"]) for g in found] == [
        ("delivery_rejected", 10),
        ("circuit_opened", 1),
    ]
    assert (
        found[0]["at"] == newest_first[0]["at"] and found[0]["first_at"] == newest_first[-1]["at"]
    )


async def test_pages_label_times_render_audit_lines_and_group_events(
    console: Api, duty: Browser, treasury: Receiver, finance: Receiver
) -> None:
    require_dot()
    hub = console.hub
    finance.respond(422, "account closed", times=12)
    await submit(hub, *[pay(f"R-{i}") for i in range(12)])
    await hub.engine.drain()
    await treasury.refuse()
    await submit(hub, *[pay(f"D-{i}") for i in range(3)])
    await hub.engine.drain()
    csrf = await duty.csrf(f"/flows/{FINANCE_FLOW}")
    await duty.post(f"/flows/{FINANCE_FLOW}/repush", {"csrf": csrf, "status": "dead"})

    _, body, _ = await duty.get("/")
    assert "Times are in Asia/Shanghai (UTC+08:00)." in body
    events = text(section(body, "Recent events"))
    assert events.count("delivery rejected") == 1 and "\u00d712" in events
    assert "circuit opened" in events  # not pushed out by the rejections

    _, flow, _ = await duty.get(f"/flows/{FINANCE_FLOW}")
    audit = section(flow, "Audit log")
    assert '<span class="k">count:</span> 12' in audit
    assert "{'" not in audit and "&#39;" not in audit
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+08:00", audit)


# -- 5. the graph stays coloured while the problem lasts --------------------------------------


def test_flow_state_follows_dead_and_waiting_deliveries() -> None:
    assert graph.flow_state({"dead": 26}, "up", False) == ("failing", None)
    assert graph.flow_state({"held": {"blocked": 2}}, "up", False) == ("held", "blocked")
    assert graph.flow_state({"held": {"unmapped_scenario": 1}}, "up", False) == (
        "held",
        "unmapped_scenario",
    )
    assert graph.flow_state({"dead": 1, "held": {"blocked": 1}}, "up", False)[0] == "failing"
    assert graph.flow_state({"dead": 3}, "down", False) == ("held", "down")
    assert graph.flow_state({"dead": 0, "held": {}}, "up", False) == ("flowing", None)


async def test_the_graph_stays_red_hours_after_the_failures(
    console: Api, duty: Browser, finance: Receiver, clock: FakeClock
) -> None:
    require_dot()
    hub = console.hub
    finance.respond(422, "account closed", times=1)
    await submit(hub, pay("LATE-1"))
    await hub.engine.drain()
    clock.advance(timedelta(hours=3))
    _, body, _ = await duty.get("/")
    svg = html.unescape(body)
    assert 'id="flow-trading-finance" class="edge flow state-failing"' in svg
    assert 'href="/flows/trading-finance?status=dead">1 dead</a>' in body


# -- 6. layout: no empty card for a viewer, a legend, a favicon, HTML errors -----------------


async def test_viewer_pages_have_no_empty_card_and_scroll_boxes_take_focus(
    console: Api, auditor: Browser
) -> None:
    _, body, _ = await auditor.get(f"/flows/{TREASURY_FLOW}")
    assert 'class="card actions"' not in body
    assert 'class="chart-legend"' in body and "retried (unavailable, throttled)" in body
    for box in re.findall(r'<div class="scroll"[^>]*>', body):
        assert 'tabindex="0"' in box and "aria-label=" in box, box


async def test_a_viewer_sees_no_card_without_content(console: Api, auditor: Browser) -> None:
    hub = console.hub
    paths = ["/", "/flows", f"/flows/{TREASURY_FLOW}", "/systems", "/maintenance", "/activity"]
    if "incidents" in hub.capabilities:
        made = hub.capabilities["incidents"].new(title="Treasury slow", actor="ops")
        paths += ["/incidents", f"/incidents/{made['id']}"]
    for path in paths:
        _, body, _ = await auditor.get(path)
        for card in re.findall(r'<section class="card[^"]*"[^>]*>(.*?)</section>', body, re.S):
            rest = re.sub(r"<h[12][^>]*>.*?</h[12]>", "", card, flags=re.S)
            assert text(rest).strip(), (path, card[:200])


async def test_favicon_and_malformed_addresses_answer_pages(console: Api, duty: Browser) -> None:
    for path in ("/favicon.ico", "/console/static/favicon.svg"):
        status, svg, headers = await duty.get(path)
        assert status == 200 and headers["Content-Type"].startswith("image/svg+xml")
        assert svg.startswith("<svg")
    _, page, _ = await duty.get("/")
    assert '<link rel="icon" href="/console/static/favicon.svg"' in page
    for path, code, words in (
        ("/deliveries/abc", 404, "This address is not valid"),
        ("/flows/trading-treasury?before=abc", 404, "This address is not valid"),
        ("/console/deliveries/abc", 404, "There is no such page"),
        ("/deliveries/99999999999999999999999", 404, "no delivery 99999999999999999999999"),
        ("/flows/trading-treasury?before=99999999999999999999999", 400, "is no delivery id"),
    ):
        status, body, headers = await duty.get(path)
        assert status == code, (path, status, body[:200])
        assert headers["Content-Type"].startswith("text/html"), path
        assert words in body and "<main>" in body, path
    status, body, headers = await duty.get("/api/v1/nothing-here")
    assert status == 404 and headers["Content-Type"].startswith("application/json")


# -- 2 and 7. words, and who to call ----------------------------------------------------------


async def test_zh_cn_words_follow_the_glossary(
    console: Api, duty: Browser, treasury: Receiver
) -> None:
    hub = console.hub
    await _down_with_a_blocked_revision(hub, treasury)
    _, body, _ = await duty.get(f"/flows/{TREASURY_FLOW}?lang=zh-CN")
    stuck = text(section(body, 'id="stuck"'))
    assert "挂起" in stuck and "等待前序版本" in stuck and "下游宕机" in stuck
    assert "暂停" not in stuck  # the Pause button's word is not a state
    assert "blocked" not in stuck and "downstream_down" not in stuck
    assert ">故障单</a>" in body
    _, systems, _ = await duty.get("/systems")
    card = text(section(systems, 'id="treasury"'))
    assert "运维" in card and "联系谁" in card and "值班" in card


async def test_systems_say_who_to_call_and_link_their_incidents(
    console: Api, duty: Browser
) -> None:
    _, body, _ = await duty.get("/systems?lang=en")
    card = section(body, 'id="treasury"')
    rows = re.findall(r"<tr><td>(\w+)</td><td>([^<]*)</td>", card)
    assert rows == [("ops", "Li Lei"), ("dev", "Han Meimei")]  # on call first
    assert 'href="tel:+862155550101"' in card and "24/7" in card
    if "incidents" in console.hub.capabilities:
        assert 'href="/incidents?system=treasury"' in card


# -- 9. the four on-duty questions, each at most one click from the overview -----------------


async def test_the_four_on_duty_questions_are_one_click_from_the_overview(
    console: Api, duty: Browser, treasury: Receiver
) -> None:
    require_dot()
    hub = console.hub
    await _down_with_a_blocked_revision(hub, treasury)
    _, overview, _ = await duty.get("/")
    links = set(re.findall(r'href="([^"#]+)', html.unescape(overview)))
    answers = {
        # who to call
        "/systems": ["Who to call", "Li Lei", "+86 21 5555 0101"],
        # what is stuck and why, in numbers (the overview shows the numbers; one click lists them)
        f"/flows/{TREASURY_FLOW}?status=held&reason=blocked": ["Matching deliveries: 1"],
        # what is planned
        "/maintenance": ["Calendar"],
        # what happened last time
        "/activity": ["circuit opened"],
    }
    if "incidents" in hub.capabilities:
        answers["/incidents"] = ["Incident register"]
    for link, expected in answers.items():
        assert link in links, link
        _, page, _ = await duty.get(link)
        for words in expected:
            assert words in html.unescape(page), (link, words)
    stuck = text(section(overview, '<table class="flows">'))
    assert "1 blocked behind an earlier revision" in stuck
    held = hub.reasons(TREASURY_FLOW)["held"]["downstream_down"]
    assert f"{held} downstream down" in stuck


async def test_a_flow_into_an_open_window_says_until_when(
    console: Api, duty: Browser, clock: FakeClock
) -> None:
    hub = console.hub
    if "maintenance" not in hub.capabilities:
        pytest.skip("maintenance capability not installed")
    now = clock.now()
    window = hub.capabilities["maintenance"].add(
        "finance",
        now + timedelta(minutes=1),
        now + timedelta(hours=1),
        "db upgrade",
        "ops",
        force=True,
    )
    _, before, _ = await duty.get(f"/flows/{FINANCE_FLOW}")
    assert 'id="why-down"' not in before  # announced, not open yet
    clock.advance(timedelta(minutes=2))
    await hub.engine.step()
    _, body, _ = await duty.get(f"/flows/{FINANCE_FLOW}")
    card = text(section(body, 'id="why-down"'))
    end = local_time(window["end"], hub.topology.tz)
    assert f"In a maintenance window until {end}" in card and "db upgrade" in card
    assert "Why finance is down" not in card  # its circuit is closed: it is not down
