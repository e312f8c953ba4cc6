"""Change notices in headless Chromium: announce a change from the console's form and mark a
recipient as read; a recipient opens a personal link without signing in and acknowledges.
The description's markdown is rendered, and HTML in it shows as text, never runs."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import expect

from interlink.features.changes.service import changes
from tests.browser.conftest import Site, sign_in


def test_announce_a_change_and_mark_it_read(page: Any, site: Site, output_dir: Path) -> None:
    sign_in(page)
    page.goto("/changes")
    form = page.locator("#announce-change")
    form.locator('select[name="system"]').select_option("trading")
    form.locator('input[name="title"]').fill("Refunds go through the payment order")
    form.locator('input[name="at"]').fill("2026-01-10T09:00")
    form.locator('select[name="kind"]').select_option("codes")
    form.locator('input[name="codes"]').fill("kind:refund")
    form.locator('textarea[name="description"]').fill(
        "## Refunds\n\nSend `kind: refund`. <script>window.pwned = 1</script> "
        "[training](javascript:window.pwned=2)"
    )
    form.locator('button[type="submit"]').click()
    expect(page).to_have_url(re.compile(r"/changes/\d+$"))
    expect(page.locator("h1")).to_contain_text("Refunds go through the payment order")
    description = page.locator("#change-description")
    expect(description.locator("h2")).to_have_text("Refunds")
    expect(description).to_contain_text("<script>window.pwned = 1</script>")
    assert description.locator("script").count() == 0
    assert description.locator("a[href^='javascript']").count() == 0
    assert page.evaluate("window.pwned === undefined")
    affected = page.locator("#affected")
    expect(affected).to_contain_text("trading-treasury")
    expect(affected).to_contain_text("code kind:refund: reads every field")
    row = page.locator("#recipients tr.not-acked", has_text="treasury-ops@example.com")
    expect(row).to_have_count(1)
    row.locator("button").click()
    acked = page.locator("#recipients tr.acked", has_text="treasury-ops@example.com")
    expect(acked).to_contain_text("console:duty")
    expect(page.locator("#change-acks")).to_have_text("read by 1 of 1")
    page.screenshot(path=str(output_dir / "change.png"), full_page=True)
    page.goto("/maintenance?month=2026-01")
    expect(page.locator(".calendar a.win.change")).to_contain_text("Refunds")
    page.goto("/systems")
    expect(page.locator("#treasury a.system-change")).to_contain_text("Refunds")


def test_a_personal_link_acknowledges_without_signing_in(
    page: Any, site: Site, output_dir: Path
) -> None:
    svc = changes(site.hub)
    change = svc.announce(
        "trading",
        title="Release 4.2 of the order system",
        at=site.clock.now() + timedelta(days=2),
        kind="release",
        actor="cli:tester",
        description="Downtime *20 minutes*.",
        send=False,
    )
    [recipient] = change["recipients"]
    parts = urlsplit(svc.link_for(change["id"], recipient["id"]))
    link = f"{parts.path}?{parts.query}"  # on the console's address; this one is the test's
    page.goto(link)
    expect(page.locator("h1")).to_have_text("Release 4.2 of the order system")
    expect(page.locator("#change-description em")).to_have_text("20 minutes")
    page.locator("#confirm").click()
    expect(page.locator("#acknowledged")).to_be_visible()
    page.screenshot(path=str(output_dir / "acknowledged.png"), full_page=True)
    told = svc.get(change["id"])["recipients"][0]
    assert told["acknowledged_by"] == "link:treasury-ops@example.com"
    # The same link with its signature altered is refused.
    page.goto(link[:-3] + "xyz")
    expect(page.locator("main")).to_contain_text("not valid")
