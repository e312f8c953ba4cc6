"""The console over HTTP: sign-in, sessions, CSRF, roles, and the pages over the hub."""

from __future__ import annotations

import html
from collections.abc import AsyncIterator, Callable

import pytest
from itsdangerous import URLSafeTimedSerializer

from interlink.service import Hub
from interlink.web.console.auth import COOKIE
from tests.conftest import TREASURY_FLOW, Api, delivery_of, pay, submit
from tests.console_support import CONSOLE_TOPOLOGY, ENV, TOPOLOGY, Browser, require_dot
from tests.receiver import Receiver


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


async def signed_in(console: Api, user: str) -> Browser:
    b = Browser(console.url)
    assert await b.sign_in(user) == 303
    return b


async def test_pages_need_a_session(browser: Browser) -> None:
    status, _, headers = await browser.get("/flows/trading-treasury")
    assert status == 303
    assert headers["Location"] == "/login?next=%2Fflows%2Ftrading-treasury"
    status, body, _ = await browser.get("/login")
    assert status == 200 and 'name="username"' in body and 'name="password"' in body


async def test_sign_in_sets_a_safe_cookie_and_wrong_password_is_refused(
    browser: Browser,
) -> None:
    require_dot()
    assert await browser.sign_in("duty", "wrong") == 401
    status, _, headers = await browser.post(
        "/login", {"username": "duty", "password": ENV["TEST_DUTY_PASSWORD"], "next": "//evil"}
    )
    assert status == 303 and headers["Location"] == "/"
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    status, body, _ = await browser.get("/")
    assert status == 200 and "duty" in body and "<svg" in body


async def test_a_forged_session_is_refused(console: Api, browser: Browser) -> None:
    b = await signed_in(console, "duty")
    try:
        [cookie] = list(b.session.cookie_jar)
        good = cookie.value
    finally:
        await b.close()
    other_key = URLSafeTimedSerializer("another-key", salt="interlink-console-session")
    forged_admin = other_key.dumps({"u": "boss", "c": "x", "l": None})
    tampered = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    for value in (tampered, forged_admin, "garbage"):
        status, _, headers = await browser.get("/", headers={"Cookie": f"{COOKIE}={value}"})
        assert status == 303 and headers["Location"] == "/login", value
        status, _, headers = await browser.post(
            f"/flows/{TREASURY_FLOW}/pause", {"csrf": "x"}, headers={"Cookie": f"{COOKIE}={value}"}
        )
        assert status == 303 and headers["Location"].startswith("/login")
    status, _, _ = await browser.get("/", headers={"Cookie": f"{COOKIE}={good}"})
    assert status == 200
    assert console.hub.audit() == []


async def test_a_viewer_cannot_repush(console: Api, treasury: Receiver) -> None:
    treasury.respond(422, "account closed", times=1)
    [doc] = await submit(console.hub, pay("V1"))
    await console.hub.engine.drain()
    dead = delivery_of(console.hub, doc["id"])
    b = await signed_in(console, "auditor")
    try:
        csrf = await b.csrf()
        status, body, _ = await b.post(f"/deliveries/{dead.id}/repush", {"csrf": csrf})
        assert status == 403 and "operator" in body
        status, _, _ = await b.get(f"/flows/{TREASURY_FLOW}/repush?status=dead")
        assert status == 403
        status, body, _ = await b.get(f"/documents/{doc['id']}")
        assert status == 200 and "repush-one" not in body
    finally:
        await b.close()
    assert delivery_of(console.hub, doc["id"]).status == "dead"
    assert console.hub.audit() == []


async def test_a_post_without_csrf_is_refused(console: Api) -> None:
    b = await signed_in(console, "duty")
    try:
        status, _, _ = await b.post(f"/flows/{TREASURY_FLOW}/pause", {"note": "x"})
        assert status == 403
        status, _, _ = await b.post(f"/flows/{TREASURY_FLOW}/pause", {"csrf": "not-it"})
        assert status == 403
    finally:
        await b.close()
    assert console.hub.status()["flows"][TREASURY_FLOW]["hold"] is None


async def test_pause_and_resume_are_audited_with_the_user(console: Api) -> None:
    require_dot()
    b = await signed_in(console, "duty")
    try:
        csrf = await b.csrf()
        status, _, headers = await b.post(
            f"/flows/{TREASURY_FLOW}/pause", {"csrf": csrf, "note": "release 4.2"}
        )
        assert status == 303
        status, body, _ = await b.get(headers["Location"])
        assert "paused" in body and "console:duty" in body and "release 4.2" in body
        _, overview, _ = await b.get("/")
        svg = html.unescape(overview)  # Graphviz writes "-" as &#45;
        assert 'id="flow-trading-treasury" class="edge flow state-held"' in svg
        status, _, _ = await b.post(f"/flows/{TREASURY_FLOW}/resume", {"csrf": csrf})
        assert status == 303
    finally:
        await b.close()
    actions = [(a["actor"], a["action"]) for a in console.hub.audit(f"flow:{TREASURY_FLOW}")]
    assert actions == [("console:duty", "resume"), ("console:duty", "pause")]


async def test_repush_by_filter_confirms_the_count_first(console: Api, treasury: Receiver) -> None:
    treasury.respond(400, "bad amount", times=3)
    docs = await submit(console.hub, pay("R1"), pay("R2"), pay("R3"))
    await console.hub.engine.drain()
    b = await signed_in(console, "duty")
    try:
        status, body, _ = await b.get(f"/flows/{TREASURY_FLOW}?status=dead")
        assert status == 200 and body.count('class="row-dead"') == 3
        status, body, _ = await b.get(f"/flows/{TREASURY_FLOW}/repush?status=dead&reason=rejected")
        assert status == 200 and "Re-push 3 deliveries?" in body
        assert console.hub.audit() == []  # the confirmation changed nothing
        csrf = await b.csrf(f"/flows/{TREASURY_FLOW}")
        status, _, headers = await b.post(
            f"/flows/{TREASURY_FLOW}/repush",
            {"csrf": csrf, "status": "dead", "reason": "rejected", "key": "", "since": ""},
        )
        assert status == 303
        _, body, _ = await b.get(headers["Location"])
        assert "3 deliveries re-pushed." in body
    finally:
        await b.close()
    assert {delivery_of(console.hub, d["id"]).status for d in docs} == {"pending"}
    [record] = console.hub.audit()
    assert (record["actor"], record["action"], record["detail"]["count"]) == (
        "console:duty",
        "repush",
        3,
    )


async def test_document_page_shows_attempts_and_repushes_one(
    console: Api, treasury: Receiver
) -> None:
    treasury.respond(422, "account closed", times=1)
    [doc] = await submit(console.hub, pay("D1", amount="12.50"))
    await console.hub.engine.drain()
    dead = delivery_of(console.hub, doc["id"])
    b = await signed_in(console, "duty")
    try:
        status, body, _ = await b.get("/documents?key=D1")
        assert status == 303
        status, body, _ = await b.get(f"/documents/{doc['id']}")
        assert status == 200
        assert "account closed" in body and "422" in body and "12.50" in body
        csrf = await b.csrf(f"/documents/{doc['id']}")
        status, _, headers = await b.post(f"/deliveries/{dead.id}/repush", {"csrf": csrf})
        assert status == 303
        _, body, _ = await b.get(headers["Location"])
        assert f"Delivery {dead.id} re-pushed" in body and "console:duty" in body
        status, body, _ = await b.get("/documents/nope")
        assert status == 404 and "nope" in body
    finally:
        await b.close()


async def test_flow_page_pages_by_id_and_shows_the_chart(console: Api) -> None:
    await submit(console.hub, *(pay(f"P{i}") for i in range(60)))
    await console.hub.engine.drain()
    b = await signed_in(console, "auditor")
    try:
        status, body, _ = await b.get(f"/flows/{TREASURY_FLOW}")
        assert status == 200 and body.count('class="row-delivered"') == 50
        assert 'class="bar ok"' in body
        [cursor] = [int(x) for x in __import__("re").findall(r"before=(\d+)", body)]
        status, body, _ = await b.get(f"/flows/{TREASURY_FLOW}?before={cursor}")
        assert body.count('class="row-delivered"') == 10
        status, body, _ = await b.get(f"/flows/{TREASURY_FLOW}?since=yesterday")
        assert status == 400 and "since" in body
        status, body, _ = await b.get("/flows/nope")
        assert status == 404
    finally:
        await b.close()


async def test_systems_page_says_who_to_call_and_language_switch(console: Api) -> None:
    b = await signed_in(console, "auditor")
    try:
        _, body, _ = await b.get("/systems")
        assert "Li Lei" in body and "treasury-ops@example.com" in body
        _, body, _ = await b.get("/systems?lang=zh-CN")
        assert "出问题找谁" in body
        _, body, _ = await b.get("/")  # the choice is kept in the session
        assert "总览" in body
        for path in (
            "/activity",
            "/flows",
            "/documents",
            "/maintenance",
            "/incidents",
            "/contracts",
        ):
            status, _, _ = await b.get(path)
            assert status == 200, path
        status, body, _ = await b.get("/console/live")
        assert status == 200 and '"totals"' in body
    finally:
        await b.close()


async def test_the_browser_language_is_followed_until_one_is_chosen(console: Api) -> None:
    b = await signed_in(console, "auditor")
    try:
        zh = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}
        _, body, _ = await b.get("/flows", headers=zh)
        assert "数据流" in body and '<html lang="zh-CN">' in body
        _, body, _ = await b.get("/flows?lang=en", headers=zh)
        assert "Flows" in body
        _, body, _ = await b.get("/flows", headers=zh)  # the choice now wins
        assert '<html lang="en">' in body
    finally:
        await b.close()


async def test_without_users_the_console_says_how_to_add_one(
    make_hub: Callable[[str], Hub],
) -> None:
    server = await Api(make_hub(TOPOLOGY)).start()
    b = Browser(server.url)
    try:
        _, body, _ = await b.get("/login")
        assert "No console users are configured" in body and "password_env" in body
        assert await b.sign_in("duty", "anything") == 401
    finally:
        await b.close()
        await server.stop()
