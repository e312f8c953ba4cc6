"""The console in headless Chromium: sign in, the topology with a held system, re-push a dead
delivery, announce a window (peak-hour warning), register and resolve an incident with a
screenshot. Each test leaves a screenshot in its output folder."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from interlink.intake import Item
from tests.browser.conftest import Site, sign_in
from tests.conftest import pay


def submit(site: Site, *payloads: dict[str, Any]) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        results = await site.hub.intake.submit(
            site.hub.topology.systems["trading"], [Item("payment_order", p) for p in payloads]
        )
        await site.hub.engine.drain()
        return results  # type: ignore[return-value]

    return site.run(go())


def test_sign_in_and_see_a_held_system_highlighted(page: Any, site: Site, output_dir: Path) -> None:
    site.run(site.treasury.refuse())
    try:
        submit(site, pay("DOWN-1"), pay("DOWN-2"), pay("DOWN-3"))
    finally:
        site.run(site.treasury.accept())
    assert site.hub.status()["systems"]["treasury"]["circuit"] == "open"

    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login"))
    sign_in(page, "auditor")
    node = page.locator("svg g#system-treasury")
    expect(node).to_have_class(re.compile(r"\bstate-down\b"))
    expect(page.locator("svg g#system-finance")).to_have_class(re.compile(r"\bstate-up\b"))
    edge = page.locator("svg g#flow-trading-treasury")
    expect(edge).to_have_class(re.compile(r"\bstate-held\b"))
    assert edge.locator("path").first.get_attribute("stroke") == "#b45309"
    expect(page.locator("svg g#system-treasury text").first).to_be_visible()
    expect(page.locator("[data-total=held]")).to_have_text("3")
    page.screenshot(path=str(output_dir / "overview.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.screenshot(path=str(output_dir / "overview-phone.png"), full_page=True)


def test_open_a_dead_delivery_and_repush_it(page: Any, site: Site, output_dir: Path) -> None:
    site.finance.respond(422, "account closed", times=1)
    [doc] = submit(site, pay("DEAD-1", amount="99.00"))
    sign_in(page)
    page.goto("/flows/trading-finance?status=dead")
    page.click(f'tr.row-dead a[href="/documents/{doc["id"]}"]')
    section = page.locator("section[id^=delivery-]", has_text="trading-finance")
    expect(section).to_contain_text("account closed")
    expect(section).to_contain_text("422")
    section.locator("button.repush-one").click()
    expect(page.locator(".flash")).to_contain_text("re-pushed")
    expect(page.locator("section[id^=delivery-]", has_text="trading-finance")).to_contain_text(
        "console:duty"
    )
    page.screenshot(path=str(output_dir / "repushed.png"), full_page=True)
    site.run(site.hub.engine.drain())
    finance = [d for d in site.hub.document(doc["id"]).deliveries if d.flow == "trading-finance"]
    assert finance[0].status == "delivered"


def test_announce_a_window_and_see_the_peak_hour_warning(
    page: Any, site: Site, output_dir: Path
) -> None:
    if "maintenance" not in site.hub.capabilities:
        pytest.skip("maintenance capability not installed")
    tz = site.hub.topology.tz
    day = (site.clock.now().astimezone(tz) + timedelta(days=2)).date()
    sign_in(page)
    page.goto("/maintenance")
    page.select_option('#announce select[name="system"]', "finance")
    page.fill('#announce input[name="start"]', f"{day}T09:30")
    page.fill('#announce input[name="end"]', f"{day}T10:30")
    page.fill('#announce input[name="reason"]', "release 4.2")
    page.click('#announce button[type="submit"]')
    # finance declares no peak hours: no warning
    expect(page.locator("body")).to_contain_text("No warnings")
    page.go_back()
    page.select_option('#announce select[name="system"]', "treasury")
    page.click('#announce button[type="submit"]')
    expect(page.locator("#warnings")).to_contain_text("peak hours")
    page.screenshot(path=str(output_dir / "preview.png"), full_page=True)
    assert site.hub.audit(target="maintenance") == []  # the check wrote nothing
    page.check('input[name="force"]')
    page.click("#confirm-window")
    expect(page.locator(".flash")).to_contain_text("announced")
    expect(page.locator(".calendar")).to_contain_text("treasury")
    page.screenshot(path=str(output_dir / "calendar.png"), full_page=True)
    [record] = site.hub.audit(target="maintenance")
    assert record["actor"] == "console:duty"


def test_register_an_incident_with_a_screenshot_and_resolve_it(
    page: Any, site: Site, output_dir: Path
) -> None:
    if "incidents" not in site.hub.capabilities:
        pytest.skip("incidents capability not installed")
    sign_in(page)
    page.goto("/incidents")
    shot = output_dir / "register.png"
    page.screenshot(path=str(shot))
    form = page.locator("#new-incident")
    form.locator('input[name="title"]').fill("Treasury refused payments after release")
    form.locator('textarea[name="description"]').fill("Circuit opened at 10:02.")
    form.locator('select[name="systems"]').select_option("treasury")
    form.locator('button[type="submit"]').click()
    expect(page.locator("h1")).to_contain_text("Treasury refused payments")
    page.set_input_files('#upload input[name="file"]', str(shot))
    page.click('#upload button[type="submit"]')
    expect(page.locator("ul.attachments")).to_contain_text("register.png")
    page.fill('#resolve textarea[name="resolution"]', "Certificate renewed; re-pushed.")
    page.click('#resolve button[type="submit"]')
    expect(page.locator("#incident-status")).to_have_text("resolved")
    expect(page.locator("ul.timeline")).to_contain_text("console:duty")
    page.screenshot(path=str(output_dir / "incident.png"), full_page=True)


def test_no_page_breaks_its_content_security_policy(page: Any, site: Site) -> None:
    """Every console page, the API docs included, works under the CSP and reports no
    violation (the ``page`` fixture fails the test on any, from any page visited)."""
    from tests.browser.conftest import csp_violations

    sign_in(page, "duty")
    for path in ("/", "/flows", "/flows/trading-treasury", "/documents", "/systems", "/activity"):
        page.goto(path)
        expect(page.locator("main")).to_be_visible()
        assert csp_violations(page) == [], path
    headers = page.request.get("/").headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    page.goto("/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Interlink")
    expect(page.locator(".opblock").first).to_be_visible()
    assert csp_violations(page) == []
