"""Every console page under axe-core (0 critical, 0 serious violations), and screenshots in
English and Simplified Chinese on a desktop and a phone, each checked: the page fits the
viewport's width, the deliveries list stays short and its error column can be scrolled to by
keyboard, and the key parts are visible.

axe-core comes from npm at test time (never vendored): ``npm install --prefix <venv>/node
axe-core``, once, into a folder outside the repository. Off CI the axe test skips when npm or
the network is missing; under CI (CI=true) it fails instead.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from interlink.intake import Item
from tests.browser.conftest import Site, sign_in
from tests.conftest import pay

AXE_VERSION = "4"  # the major version the assertions below are written for
AXE_HOME = Path(sys.prefix) / "node"
AXE_JS = AXE_HOME / "node_modules" / "axe-core" / "axe.min.js"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# A phone screen or six for fifty deliveries; it was 14,000 px when each cell wrapped.
PHONE_FLOW_MAX_HEIGHT = 5_000
LONG_ERROR = (
    "422 account closed: the payee account 6222 0000 1111 2222 was closed by the bank on "
    "2026-01-01; ask the customer for a new account"
)


def _unavailable(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; axe-core is required under CI")
    pytest.skip(message)


@pytest.fixture(scope="module")
def axe_js() -> Path:
    """axe.min.js from npm, installed once under the virtual environment."""
    if AXE_JS.exists():
        return AXE_JS
    npm = shutil.which("npm")
    if npm is None:
        _unavailable("npm is not installed (apt-get install -y npm), so axe-core cannot be")
    try:
        subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(AXE_HOME),
                "--no-audit",
                "--no-fund",
                f"axe-core@{AXE_VERSION}",
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
    except (subprocess.SubprocessError, OSError) as e:
        _unavailable(f"npm install axe-core failed (no network?): {e}")
    if not AXE_JS.exists():
        _unavailable(f"npm installed axe-core without {AXE_JS.name}")
    return AXE_JS


def _submit(site: Site, *payloads: dict[str, Any]) -> None:
    async def go() -> None:
        await site.hub.intake.submit(
            site.hub.topology.systems["trading"], [Item("payment_order", p) for p in payloads]
        )
        await site.hub.engine.drain()

    site.run(go())


@pytest.fixture(scope="module")
def stocked(site: Site) -> dict[str, Any]:
    """A hub with something on every page: treasury down (held downstream_down, and a second
    revision blocked behind its first), sixty dead deliveries to finance with a long error,
    a window announced, an incident registered, an audit record."""
    hub = site.hub
    site.run(site.treasury.refuse())
    site.finance.respond(422, LONG_ERROR, times=60)
    _submit(site, *[pay(f"ORD-{i:03d}") for i in range(60)])
    _submit(site, pay("ORD-000", amount="20.00"))
    site.run(site.treasury.accept())
    found: dict[str, Any] = {"document": hub.documents("ORD-000")[0].id}
    if "maintenance" in hub.capabilities:
        now = hub.clock.now()
        window = hub.capabilities["maintenance"].add(
            "finance",
            now + timedelta(days=2),
            now + timedelta(days=2, hours=1),
            "patch",
            "ops",
            force=True,
        )
        found["window"] = window["id"]
    if "incidents" in hub.capabilities:
        found["incident"] = hub.capabilities["incidents"].new(
            title="Treasury refused connections", actor="ops", systems=["treasury"]
        )["id"]
    hub.pause("trading-finance", actor="console:duty", note="checking the 422s")
    hub.resume("trading-finance", actor="console:duty")
    return found


def pages(stocked: dict[str, Any]) -> list[str]:
    found = [
        "/",
        "/flows",
        "/flows/trading-treasury",
        "/flows/trading-finance?status=dead",
        "/flows/trading-finance/repush?status=dead",
        "/documents",
        f"/documents/{stocked['document']}",
        "/systems",
        "/maintenance",
        "/incidents",
        "/contracts",
        "/activity",
        "/deliveries/abc",
    ]
    if "incident" in stocked:
        found.append(f"/incidents/{stocked['incident']}")
    return found


@pytest.fixture
def axe_page(chromium: Any, site: Site) -> Iterator[Any]:
    """A page whose Content-Security-Policy lets the test add axe's script (our CSP allows
    no inline script, and add_script_tag inlines it); the console itself is unchanged."""
    context = chromium.new_context(base_url=site.url, viewport=DESKTOP, bypass_csp=True)
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def axe_violations(page: Any, axe_js: Path) -> list[str]:
    page.add_script_tag(path=str(axe_js))
    result = page.evaluate(
        """async () => {
          const r = await axe.run(document, {resultTypes: ["violations"]});
          return r.violations.map(v => ({id: v.id, impact: v.impact,
            nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}));
        }"""
    )
    return [
        f"{v['impact']} {v['id']}: {', '.join(v['nodes'])}"
        for v in result
        if v["impact"] in ("critical", "serious")
    ]


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_every_page_has_no_critical_or_serious_axe_violation(
    axe_page: Any, site: Site, stocked: dict[str, Any], axe_js: Path, lang: str
) -> None:
    axe_page.goto(f"/login?lang={lang}")
    assert axe_violations(axe_page, axe_js) == [], "/login"
    sign_in(axe_page, "duty")
    axe_page.goto(f"/?lang={lang}")
    found = {}
    for path in pages(stocked):
        axe_page.goto(path)
        expect(axe_page.locator("main")).to_be_visible()
        assert axe_page.locator("html").get_attribute("lang") == lang
        problems = axe_violations(axe_page, axe_js)
        if problems:
            found[path] = problems
    assert found == {}


def _fits(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.evaluate("window.innerWidth")
    assert width <= viewport, f"{page.url}: {width}px wide in a {viewport}px viewport"


@pytest.mark.parametrize("device", ["desktop", "phone"])
@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_screenshots_fit_the_screen_in_both_languages(
    page: Any, site: Site, stocked: dict[str, Any], output_dir: Path, lang: str, device: str
) -> None:
    page.set_viewport_size(DESKTOP if device == "desktop" else PHONE)
    sign_in(page, "duty")
    page.goto(f"/?lang={lang}")
    words = {
        "en": ("Deliveries", "What is stuck and why", "Who to call"),
        "zh-CN": ("投递", "卡在哪里、为什么", "联系谁"),
    }[lang]
    shots = {
        "overview": "/",
        "flow": "/flows/trading-finance?status=dead",
        "treasury": "/flows/trading-treasury",
        "systems": "/systems",
        "maintenance": "/maintenance",
    }
    for name, path in shots.items():
        page.goto(path)
        expect(page.locator("main h1, main h2").first).to_be_visible()
        expect(page.locator("footer.zone")).to_contain_text("Asia/Shanghai")
        _fits(page)
        shot = output_dir / f"{lang}-{device}-{name}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000, shot

    page.goto("/")
    expect(page.locator(".counters")).to_be_visible()
    expect(page.locator("svg g#flow-trading-finance")).to_have_class(
        re.compile(r"\bstate-failing\b")
    )
    page.goto("/flows/trading-treasury")
    expect(page.locator("#stuck h2")).to_have_text(words[1])
    expect(page.locator("#why-down")).to_be_visible()
    page.goto("/systems")
    expect(page.locator("#treasury h3")).to_have_text(words[2])

    page.goto("/flows/trading-finance?status=dead")
    expect(page.locator("#deliveries h2")).to_have_text(words[0])
    height = page.evaluate("document.documentElement.scrollHeight")
    if device == "phone":
        assert height <= PHONE_FLOW_MAX_HEIGHT, f"the deliveries page is {height}px tall"
    box = page.locator("#deliveries .scroll")
    error = box.locator("td.excerpt").first
    expect(error).to_contain_text("account closed")
    if device == "phone":
        # The error column is off-screen at first and reached from the keyboard: the box
        # takes focus (Tab), then the arrow keys scroll it.
        assert box.get_attribute("tabindex") == "0" and box.get_attribute("aria-label")
        box.focus()
        before = box.evaluate("b => b.scrollLeft")
        for _ in range(40):
            page.keyboard.press("ArrowRight")
        assert box.evaluate("b => b.scrollLeft") > before
        # The browser may still be scrolling (smoothly) when the last key is handled: wait
        # for the error cell to come into view, failing after Playwright's timeout if never.
        page.wait_for_function(
            "e => { const r = e.getBoundingClientRect(); return r.left < window.innerWidth; }",
            arg=error.element_handle(),
        )
