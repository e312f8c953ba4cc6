"""Browser tests: headless Chromium from Debian, driven by Playwright, against a real uvicorn
on loopback serving the app (as `interlink serve` does) over a hub whose topology has users.

Off CI, the tests skip when `chromium` or Graphviz's `dot` is missing; under CI (CI=true) they
fail instead. One browser is shared per module; each test gets a fresh context (no cookies).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from interlink.clock import FakeClock
from interlink.config import load
from interlink.features.registry import FEATURES
from interlink.service import Hub
from interlink.transports.http import HttpTransport
from tests.conftest import SECRET, TOKEN, Api
from tests.console_support import CONSOLE_TOPOLOGY, ENV, PASSWORDS
from tests.receiver import Receiver

T = TypeVar("T")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def _need(found: str | None, what: str) -> str:
    if found:
        return found
    message = f"{what} is not installed (apt-get install -y graphviz chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; it is required under CI")
    pytest.skip(message)


def chromium_path() -> str:
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )
    return _need(found, "chromium")


class Site:
    """The console on a real server in a thread of its own, with loopback downstreams."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.clock = FakeClock()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    async def start(self) -> None:
        self.treasury = await Receiver().start()
        self.finance = await Receiver().start()
        path = self.folder / "interlink.yaml"
        path.write_text(
            CONSOLE_TOPOLOGY.format(treasury=self.treasury.url, finance=self.finance.url)
        )
        self.hub = Hub(load(path), clock=self.clock, transport=HttpTransport(), features=FEATURES)
        self.api = await Api(self.hub).start()
        self.url = self.api.url

    async def stop(self) -> None:
        await self.api.stop()
        await self.hub.close()
        await self.treasury.stop()
        await self.finance.stop()

    def close(self) -> None:
        self.run(self.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    _need(shutil.which("dot"), "Graphviz (dot)")
    env = {**ENV, "TEST_TRADING_TOKEN": TOKEN, "TEST_TREASURY_SECRET": SECRET}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    s = Site(tmp_path_factory.mktemp("console"))
    try:
        s.run(s.start())
        yield s
    finally:
        s.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()


# Every page reports what its Content-Security-Policy refused into window.__cspViolations.
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " " + (e.blockedURI || "inline"));
});
"""


def csp_violations(page: Any) -> list[str]:
    found: list[str] = page.evaluate("window.__cspViolations || []")
    return found


@pytest.fixture
def page(chromium: Any, site: Site) -> Iterator[Any]:
    """A fresh page; the test fails if the page or its console reported a CSP violation."""
    context = chromium.new_context(base_url=site.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    context.add_init_script(RECORD_CSP_VIOLATIONS)
    refused: list[str] = []
    try:
        p = context.new_page()
        p.on(
            "console",
            lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
        )
        yield p
        if not p.is_closed():
            refused.extend(csp_violations(p))
        assert refused == [], refused
    finally:
        context.close()


def sign_in(page: Any, user: str = "duty") -> None:
    page.goto("/login")
    page.fill('input[name="username"]', user)
    page.fill('input[name="password"]', PASSWORDS[user])
    page.click('button[type="submit"]')
    page.wait_for_url("**/")
