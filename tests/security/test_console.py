"""Attacks on the console and the pages beside the API: one test per attack.

Each ran against the console before issue 11 and got in: password guessing without limit, a
cookie that outlived its logout and its password, pages that any site could frame or load
scripts into, words of an attacker's in the flash banner, spreadsheet formulas in CSV exports,
and API docs pulled from a public CDN.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest

from interlink.clock import FakeClock
from interlink.service import Hub
from interlink.web.console.auth import COOKIE
from tests.conftest import TREASURY_FLOW, Api
from tests.console_support import CONSOLE_TOPOLOGY, ENV, PASSWORDS, Browser
from tests.integration.test_incidents import png

ADMIN = "admin-token-for-the-console-tests"


@pytest.fixture
def console_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
async def console(console_env: None, make_hub: Callable[[str], Hub]) -> AsyncIterator[Api]:
    server = await Api(make_hub(CONSOLE_TOPOLOGY)).start()
    yield server
    await server.stop()


@pytest.fixture
async def browser(console: Api) -> AsyncIterator[Browser]:
    b = Browser(console.url)
    yield b
    await b.close()


def _session_cookie(b: Browser) -> str:
    [cookie] = [c for c in b.session.cookie_jar if c.key == COOKIE]
    return cookie.value


# -- password guessing ----------------------------------------------------------------------------


async def test_guessing_one_users_password_is_throttled(
    console: Api, browser: Browser, clock: FakeClock
) -> None:
    for _ in range(5):
        assert await browser.sign_in("duty", "guess") == 401
    # now even the right password is refused until the window passes
    status, _, headers = await browser.post(
        "/login", {"username": "duty", "password": PASSWORDS["duty"]}
    )
    assert status == 429
    assert 0 < int(headers["Retry-After"]) <= 15 * 60
    # the limit is per user: another user from the same address still signs in
    other = Browser(console.url)
    try:
        assert await other.sign_in("auditor") == 303
    finally:
        await other.close()
    clock.advance(timedelta(minutes=15, seconds=1))
    assert await browser.sign_in("duty") == 303


async def test_guessing_from_one_address_is_throttled(
    console: Api, browser: Browser, clock: FakeClock
) -> None:
    # password spraying: a few guesses at each of many names, all from one address
    for i in range(20):
        assert await browser.sign_in(f"user{i % 5}", "guess") == 401
    status, _, headers = await browser.post(
        "/login", {"username": "boss", "password": PASSWORDS["boss"]}
    )
    assert status == 429 and int(headers["Retry-After"]) > 0
    clock.advance(timedelta(minutes=15, seconds=1))
    assert await browser.sign_in("boss") == 303


async def test_a_sign_in_posted_from_another_site_is_refused(browser: Browser) -> None:
    # login CSRF: another site signs the victim's browser in to the attacker's account
    for headers in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        status, _, answer = await browser.post(
            "/login",
            {"username": "duty", "password": PASSWORDS["duty"]},
            headers=headers,
        )
        assert status == 403 and COOKIE not in answer.get("Set-Cookie", ""), headers
    # the console's own form (same origin) still signs in
    status, _, _ = await browser.post(
        "/login",
        {"username": "duty", "password": PASSWORDS["duty"]},
        headers={"Origin": browser.base},
    )
    assert status == 303


# -- sessions that end --------------------------------------------------------------------------


async def test_a_cookie_kept_after_logout_is_signed_out(console: Api, browser: Browser) -> None:
    assert await browser.sign_in("duty") == 303
    stolen = _session_cookie(browser)
    status, _, _ = await browser.get("/", headers={"Cookie": f"{COOKIE}={stolen}"})
    assert status == 200
    status, _, _ = await browser.post("/logout", {})
    assert status == 303
    attacker = Browser(console.url)
    try:
        status, _, headers = await attacker.get("/", headers={"Cookie": f"{COOKIE}={stolen}"})
        assert status == 303 and headers["Location"] == "/login"
        status, _, headers = await attacker.post(
            f"/flows/{TREASURY_FLOW}/pause", {"csrf": "x"}, headers={"Cookie": f"{COOKIE}={stolen}"}
        )
        assert status == 303 and headers["Location"].startswith("/login")
    finally:
        await attacker.close()


async def test_a_password_change_ends_the_old_sessions(
    console_env: None,
    make_hub: Callable[[str], Hub],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = await Api(make_hub(CONSOLE_TOPOLOGY)).start()
    b = Browser(first.url)
    try:
        assert await b.sign_in("duty") == 303
        old = _session_cookie(b)
    finally:
        await b.close()
        await first.stop()
    # the password is changed in the environment and the server restarted (same secret key)
    monkeypatch.setenv("TEST_DUTY_PASSWORD", "a-new-password-456")
    second = await Api(make_hub(CONSOLE_TOPOLOGY)).start()
    b = Browser(second.url)
    try:
        # the other user's session still works; duty's old one does not
        status, _, headers = await b.get("/", headers={"Cookie": f"{COOKIE}={old}"})
        assert status == 303 and headers["Location"] == "/login"
        assert await b.sign_in("duty", "a-new-password-456") == 303
        status, _, _ = await b.get("/flows")
        assert status == 200
    finally:
        await b.close()
        await second.stop()


async def test_sessions_survive_a_restart_with_the_same_password(
    console_env: None, make_hub: Callable[[str], Hub]
) -> None:
    """The other side of the password check: a restart alone signs nobody out."""
    first = await Api(make_hub(CONSOLE_TOPOLOGY)).start()
    b = Browser(first.url)
    try:
        assert await b.sign_in("duty") == 303
        kept = _session_cookie(b)
    finally:
        await b.close()
        await first.stop()
    second = await Api(make_hub(CONSOLE_TOPOLOGY)).start()
    b = Browser(second.url)
    try:
        status, _, _ = await b.get("/flows", headers={"Cookie": f"{COOKIE}={kept}"})
        assert status == 200
    finally:
        await b.close()
        await second.stop()


async def test_secure_cookies_setting_marks_the_session_cookie_secure(
    console_env: None, make_hub: Callable[[str], Hub]
) -> None:
    server = await Api(make_hub(CONSOLE_TOPOLOGY + "secure_cookies: true\n")).start()
    b = Browser(server.url)
    try:
        status, _, headers = await b.post(
            "/login", {"username": "duty", "password": PASSWORDS["duty"]}
        )
        assert status == 303
        cookie = headers["Set-Cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    finally:
        await b.close()
        await server.stop()


# -- headers: framing, sniffing, foreign scripts --------------------------------------------------


def _assert_hardened(headers: dict[str, str], where: str) -> None:
    csp = headers.get("Content-Security-Policy", "")
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert directives.get("default-src") == ["'self'"], (where, csp)
    assert directives.get("frame-ancestors") == ["'none'"], (where, csp)
    script = directives.get("script-src", directives["default-src"])
    assert "'unsafe-inline'" not in script and "'unsafe-eval'" not in script, (where, csp)
    assert headers.get("X-Frame-Options") == "DENY", where
    assert headers.get("X-Content-Type-Options") == "nosniff", where
    assert headers.get("Referrer-Policy") in ("no-referrer", "same-origin"), where


async def test_every_answer_carries_the_security_headers(
    console: Api, browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTERLINK_ADMIN_TOKEN", ADMIN)
    status, _, headers = await browser.get("/login")
    assert status == 200
    _assert_hardened(headers, "/login")
    status, _, headers = await browser.get("/flows")
    assert status == 303
    _assert_hardened(headers, "/flows redirect")
    assert await browser.sign_in("duty") == 303
    for path in ("/flows", f"/flows/{TREASURY_FLOW}", "/console/static/console.css"):
        status, _, headers = await browser.get(path)
        assert status == 200, path
        _assert_hardened(headers, path)
    for path, expected in (
        ("/healthz", 200),
        ("/api/v1/status", 401),  # with an admin token configured, none given
        ("/no-such-page", 404),
        ("/openapi.json", 200),
        ("/docs", 200),
    ):
        status, _, headers = await console.request("GET", path, token=None)
        assert status == expected, path
        _assert_hardened(headers, path)


class _Tags(HTMLParser):
    """Every tag with its attributes, and the text of inline scripts and styles."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline: list[str] = []
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._open = tag

    def handle_data(self, data: str) -> None:
        if self._open in ("script", "style") and data.strip():
            self.inline.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._open = None


def _parse(body: str) -> _Tags:
    tags = _Tags()
    tags.feed(body)
    return tags


async def test_console_pages_need_no_inline_script_or_style(console: Api, browser: Browser) -> None:
    """The CSP forbids inline script and style; a page that used them would break."""
    pages = ["/login", "/", "/flows", f"/flows/{TREASURY_FLOW}", "/systems", "/activity"]
    incidents = console.hub.capabilities.get("incidents")
    if incidents is not None:  # an incident with a screenshot shows it inline
        item = incidents.new(title="receipts missing", actor="tester")
        incidents.attach(item["id"], "shot.png", png(), "tester")
        pages += ["/incidents", f"/incidents/{item['id']}"]
    assert await browser.sign_in("duty") == 303
    for path in pages:
        status, body, _ = await browser.get(path)
        assert status == 200, path
        tags = _parse(body)
        assert tags.inline == [], path
        for tag, attrs in tags.tags:
            assert "style" not in attrs, (path, tag, attrs)
            assert not any(name.startswith("on") for name in attrs), (path, tag, attrs)


async def test_docs_load_nothing_from_another_host(console: Api) -> None:
    # ReDoc's packaged bundle still fetches its logo from a CDN: /redoc is gone
    status, _, _ = await console.request("GET", "/redoc", token=None)
    assert status == 404
    for page in ("/docs",):
        status, body, headers = await console.request("GET", page, token=None)
        assert status == 200, page
        assert isinstance(body, str)
        tags = _parse(body)
        assert tags.inline == [], page
        references = [
            value
            for _, attrs in tags.tags
            for name, value in attrs.items()
            if name in ("src", "href") and value
        ]
        assert references, page
        for ref in references:
            parts = urlsplit(ref)
            assert not parts.scheme and not parts.netloc, (page, ref)
            assert console.session is not None
            async with console.session.get(console.url + ref) as response:
                assert response.status == 200, ref
                assert await response.read(), ref
        # nor from a script it loads: the CSP keeps it to this origin
        csp = headers["Content-Security-Policy"]
        assert "http" not in csp and "*" not in csp, csp


# -- what the pages show --------------------------------------------------------------------------


async def test_a_crafted_flash_message_shows_nothing(browser: Browser) -> None:
    assert await browser.sign_in("duty") == 303
    page = f"/flows/{TREASURY_FLOW}"
    crafted = [
        {"msg": "repush.done", "count": "0. Your session expired: call +1 555 0100"},
        {"msg": "paused.done", "flow": "payroll to 555 0100", "count": "3"},
        {"msg": "repush.one_done", "id": "7", "state": "lost, call 555 0100"},
        {"msg": "maintenance.cancelled", "id": "1; call 555 0100"},
        {"msg": "call 555 0100", "count": "1"},
    ]
    for query in crafted:
        status, body, _ = await browser.get(page, params=query)
        assert status == 200
        assert "555 0100" not in body and 'class="flash"' not in body, query
    # the messages the console itself sends still show
    status, body, _ = await browser.get(page, params={"msg": "repush.done", "count": "3"})
    assert '<p class="flash" role="status">3 deliveries re-pushed.</p>' in body
    status, body, _ = await browser.get(
        page, params={"msg": "paused.done", "flow": TREASURY_FLOW, "count": "2"}
    )
    assert f"Flow {TREASURY_FLOW} paused; 2 deliveries held." in body
    status, body, _ = await browser.get(
        page, params={"msg": "repush.one_done", "id": "7", "state": "held: paused"}
    )
    assert "Delivery 7 re-pushed; it is now held: paused." in body


# -- CSV exports ----------------------------------------------------------------------------------

FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)"]
# a tab or carriage return first also starts a formula; incident texts are stripped of them
BLANK_LED = ["\t=1+1", "\r=1+1"]


def _csv_cells(text: str) -> list[str]:
    import csv
    import io

    return [cell for row in csv.reader(io.StringIO(text, newline="")) for cell in row]


async def test_incident_export_escapes_formula_cells(
    hub: Hub, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    incidents = hub.capabilities.get("incidents")
    if incidents is None:
        pytest.skip("incidents capability not installed")
    for text in FORMULAS:
        incidents.new(title=text, description=text, actor="tester")
    monkeypatch.setenv("INTERLINK_ADMIN_TOKEN", ADMIN)
    status, body, _ = await api.request("GET", "/api/v1/incidents/export?format=csv", token=ADMIN)
    assert status == 200 and isinstance(body, str)
    cells = _csv_cells(body)
    for text in FORMULAS:
        assert text not in cells, text
        assert "'" + text in cells, text
    for cell in cells:
        assert not re.match(r"[=+\-@\t\r]", cell), cell


def test_reconciliation_csv_escapes_formula_cells() -> None:
    from interlink.features.reconcile.report import ITEM_COLUMNS, to_csv

    items = [{c: text for c in ITEM_COLUMNS} for text in FORMULAS + BLANK_LED]
    items.append({c: "-12.50" for c in ITEM_COLUMNS})  # a negative amount stays a number
    cells = _csv_cells(to_csv({"items": items}))
    for text in FORMULAS + BLANK_LED:
        assert text not in cells and "'" + text in cells, text
    assert "-12.50" in cells
