"""Sources on the console, in the hub's status and in ``interlink check``: the page shows each
source's state and lag and the rows intake refused (paged); operators pause, resume and poll
with the console's CSRF token and a confirmation, and a viewer can do none of it."""

from __future__ import annotations

import io
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from interlink.cli import app, common
from interlink.errors import InterlinkError
from interlink.features.sources import queries
from interlink.features.sources.service import sources
from interlink.service import Hub
from tests.conftest import Api
from tests.console_support import CONSOLE_TOPOLOGY, ENV, Browser

SOURCES = """\
    token_env: TEST_TRADING_TOKEN
    sources:
      month-end:
        kind: files
        path: drop
        document: payment_order
        settle: 0s
      orders-api:
        kind: api
        document: payment_order
        endpoint: {{url: "http://127.0.0.1:9/orders", allow_local: true}}
"""
TOPOLOGY = CONSOLE_TOPOLOGY.replace("    token_env: TEST_TRADING_TOKEN\n", SOURCES, 1)
# Line 3 has no business key: intake refuses it, and it is kept as a problem.
CSV = "order_no,amount,kind\nP-1,10.00,pay\n,5.00,pay\n"
SQLITE = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


@pytest.fixture
async def console(
    monkeypatch: pytest.MonkeyPatch, make_hub: Callable[[str], Hub], tmp_path: Path
) -> AsyncIterator[Api]:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    drop = tmp_path / "drop"
    drop.mkdir()
    hub = make_hub(TOPOLOGY)
    now = hub.clock.now().timestamp()
    for name, minutes in (("a.csv", 20), ("b.csv", 10)):
        (drop / name).write_text(CSV.replace("P-1", f"P-{name[0]}"), encoding="utf-8")
        os.utime(drop / name, (now - minutes * 60, now - minutes * 60))
    server = await Api(hub).start()
    yield server
    await server.stop()


async def signed_in(console: Api, user: str) -> Browser:
    browser = Browser(console.url)
    assert await browser.sign_in(user) == 303
    return browser


async def test_the_page_shows_lag_and_problems_and_an_operator_acts(console: Api) -> None:
    duty = await signed_in(console, "duty")
    try:
        status, body, _ = await duty.get("/sources")
        assert status == 200 and 'id="source-month-end"' in body and "never" in body
        csrf = await duty.csrf("/sources")

        status, _, headers = await duty.post("/sources/month-end/poll", {"csrf": csrf})
        assert status == 303 and "done=polled" in headers["Location"]
        _, body, _ = await duty.get(headers["Location"])
        assert "Source month-end polled: 2 rows read, 1 refused." in body
        row = body.split('id="source-month-end"', 1)[1].split("</tr>", 1)[0]
        assert 'data-behind="1"' in row and "10 min" in row  # b.csv waits, 10 minutes old
        assert "<code>a.csv:3</code>" in body  # the refused line, by file:line

        # The upstream that cannot be read shows its error.
        status, _, headers = await duty.post("/sources/orders-api/poll", {"csrf": csrf})
        assert "done=unreachable" in headers["Location"]
        _, body, _ = await duty.get("/sources")
        row = body.split('id="source-orders-api"', 1)[1].split("</tr>", 1)[0]
        assert 'class="last-error"' in row and "unreachable since" in row

        # The hub's status carries each source's lag (GET /api/v1/status, status --json).
        code, data, _ = await console.request("GET", "/api/v1/status")
        assert code == 200 and isinstance(data, dict)
        lag = data["sources"]["month-end"]
        assert lag["behind"] == 1 and lag["oldest_unread_age"] == 600 and not lag["paused"]
        assert data["sources"]["orders-api"]["error"]

        # Pause asks first (a <details> question), then holds the source; a poll reads nothing.
        assert 'action="/sources/month-end/pause"' in body and "Pause source month-end?" in body
        form = {"csrf": csrf, "note": "upstream release"}
        status, _, headers = await duty.post("/sources/month-end/pause", form)
        assert status == 303 and "done=paused" in headers["Location"]
        _, body, _ = await duty.get(headers["Location"])
        assert 'id="resume-month-end"' in body and "Source month-end paused." in body
        status, _, headers = await duty.post("/sources/month-end/poll", {"csrf": csrf})
        assert "done=paused" in headers["Location"]
        assert (console.hub.topology.path.parent / "drop" / "b.csv").exists()  # not read
        status, _, _ = await duty.post("/sources/month-end/resume", {"csrf": csrf})
        assert status == 303
        assert not sources(console.hub).status_section()["sources"]["month-end"]["paused"]
        audit = console.hub.audit(target="source:month-end")
        assert [(a["action"], a["actor"]) for a in audit] == [
            ("source_resume", "console:duty"),
            ("source_pause", "console:duty"),
        ]
        assert audit[1]["detail"] == {"note": "upstream release"}

        # Without the form's token nothing happens; in Chinese the page speaks the glossary.
        status, _, _ = await duty.post("/sources/month-end/pause", {"csrf": "forged"})
        assert status == 403
        _, body, _ = await duty.get("/sources?lang=zh-CN")
        assert "积压行数" in body and "确认暂停 month-end" in body and "人工暂停" not in body
        status, body, _ = await duty.post("/sources/nope/poll", {"csrf": csrf})
        assert status == 404 and "no source" in body
    finally:
        await duty.close()


@SQLITE
async def test_a_viewer_sees_no_actions_and_cannot_act(console: Api) -> None:
    auditor = await signed_in(console, "auditor")
    try:
        status, body, _ = await auditor.get("/sources")
        assert status == 200 and 'id="source-month-end"' in body
        assert "/sources/month-end/pause" not in body and 'id="poll-month-end"' not in body
        csrf = await auditor.csrf("/sources")
        for action in ("pause", "resume", "poll"):
            status, _, _ = await auditor.post(f"/sources/month-end/{action}", {"csrf": csrf})
            assert status == 403, action
        assert console.hub.audit(target="source") == []
        assert not (console.hub.topology.path.parent / "drop" / "done").exists()
    finally:
        await auditor.close()


@SQLITE
async def test_problems_are_paged_by_id_and_filtered_by_source(console: Api) -> None:
    hub = console.hub
    at = hub.clock.now()
    rows = [queries.problem_row("month-end", at, f"x.csv:{n}", "no key", [], {}) for n in range(60)]
    hub.store.write_sync(lambda conn: queries.add_problems(conn, rows))
    duty = await signed_in(console, "duty")
    try:
        _, body, _ = await duty.get("/sources?source=month-end")
        assert body.count('id="problem-') == 50 and "x.csv:59" in body and "x.csv:9<" not in body
        older = body.split('rel="next" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
        assert older.startswith("/sources?source=month-end&before=")
        _, body, _ = await duty.get(older)
        assert body.count('id="problem-') == 10 and "x.csv:0<" in body
        _, body, _ = await duty.get("/sources?source=orders-api")
        assert 'id="problem-' not in body and "No refused rows." in body
        status, _, _ = await duty.get("/sources?before=0")
        assert status == 400
        hub.capabilities.pop("sources")
        _, body, _ = await duty.get("/sources")
        assert "The sources capability is not installed" in body
    finally:
        await duty.close()


def test_check_names_a_source_that_cannot_work_by_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = TOPOLOGY.format(treasury="http://127.0.0.1:9", finance="http://127.0.0.1:9")
    text = text.replace("payment_order\n        settle", "invoice\n        settle")
    path = tmp_path / "interlink.yaml"
    path.write_text(text, encoding="utf-8")
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "document: invoice" in t)
    printed = io.StringIO()
    monkeypatch.setattr(common.out, "file", printed)
    result = CliRunner().invoke(app, ["check", "-c", str(path)])
    assert isinstance(result.exception, InterlinkError), result.output + printed.getvalue()
    problems = getattr(result.exception, "problems", [])
    assert any(
        p.startswith(f"{path}:{line}:") and "unknown document type 'invoice'" in p for p in problems
    ), problems
    path.write_text(text.replace("document: invoice", "document: payment_order"))
    result = CliRunner().invoke(app, ["check", "-c", str(path)])
    assert result.exit_code == 0 and printed.getvalue().rstrip().endswith("ok"), printed.getvalue()
