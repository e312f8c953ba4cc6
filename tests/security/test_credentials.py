"""Credentials and the management API's trust boundary.

Each test is an attack that worked before this issue: a system's token reading another system's
documents, anyone pausing a flow on a server without an admin token, a cross-site form pausing
a flow, DNS rebinding reading everything, a serve that started with its management API open.
"""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from interlink.service import Hub
from tests.conftest import ADMIN_TOKEN, TOKEN, Api, pay

CRM_TOKEN = "crm-secret-token"
VIEWER_TOKEN = "viewer-secret-token"
OPERATOR_TOKEN = "operator-secret-token"
CHIEF_TOKEN = "chief-secret-token"

# Trading sends payment orders, the CRM sends customers; three people hold personal tokens.
TOPOLOGY = """\
timezone: Asia/Shanghai
database: sqlite:///hub.db
systems:
  trading: {{token_env: TEST_TRADING_TOKEN}}
  crm: {{token_env: TEST_CRM_TOKEN}}
  treasury: {{url: "{treasury}", timeout: 2s}}
  finance: {{url: "{finance}", timeout: 2s}}
documents:
  payment_order: {{key: order_no, amount: amount}}
  customer: {{key: customer_id}}
flows:
  trading-treasury: {{from: trading, to: treasury, document: payment_order, path: /payments}}
  trading-finance: {{from: trading, to: finance, document: payment_order, path: /trades}}
  crm-finance: {{from: crm, to: finance, document: customer, path: /customers}}
users:
  - {{name: auditor, role: viewer, token_env: TEST_VIEWER_TOKEN}}
  - {{name: duty, role: operator, token_env: TEST_DUTY_TOKEN}}
  - {{name: chief, role: admin, token_env: TEST_CHIEF_TOKEN}}
"""

COMMAND = [sys.executable, "-m", "interlink.cli"]


@pytest.fixture(autouse=True)
def _people(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_CRM_TOKEN", CRM_TOKEN)
    monkeypatch.setenv("TEST_VIEWER_TOKEN", VIEWER_TOKEN)
    monkeypatch.setenv("TEST_DUTY_TOKEN", OPERATOR_TOKEN)
    monkeypatch.setenv("TEST_CHIEF_TOKEN", CHIEF_TOKEN)


@pytest.fixture
async def server(make_hub: Callable[[str], Hub]) -> AsyncIterator[Api]:
    api = await Api(make_hub(TOPOLOGY)).start()
    yield api
    await api.stop()


@pytest.fixture
async def insecure(make_hub: Callable[[str], Hub]) -> AsyncIterator[Api]:
    api = await Api(make_hub(TOPOLOGY), insecure=True).start()
    yield api
    await api.stop()


async def _submit(api: Api, token: str, type_: str, payload: dict) -> dict:
    status, body, _ = await api.request(
        "POST", "/api/v1/documents", json={"type": type_, "payload": payload}, token=token
    )
    assert status == 202, body
    assert isinstance(body, dict)
    return body


# -- a system's token reads only what it submitted ---------------------------------------------


async def test_the_crms_token_cannot_read_tradings_payment_orders(server: Api) -> None:
    order = await _submit(server, TOKEN, "payment_order", pay("PO-1", payee_account="6222"))
    # The CRM's customer shares the business key: a lookup by key must not mix the two.
    customer = await _submit(server, CRM_TOKEN, "customer", {"customer_id": "PO-1"})
    trading_delivery = server.hub.document(order["id"]).deliveries[0].id

    # Not found, exactly as if the document did not exist: the CRM learns nothing of it.
    status, body, _ = await server.request(
        "GET", f"/api/v1/documents/{order['id']}", token=CRM_TOKEN
    )
    assert status == 404 and body["error"]["code"] == "not_found", body
    assert body["error"]["message"] == f"no document {order['id']!r}"
    status, body, _ = await server.request(
        "GET", f"/api/v1/deliveries/{trading_delivery}", token=CRM_TOKEN
    )
    assert status == 404 and body["error"]["message"] == f"no delivery {trading_delivery}"
    status, body, _ = await server.request("GET", "/api/v1/documents?key=PO-1", token=CRM_TOKEN)
    assert status == 200 and [d["id"] for d in body["items"]] == [customer["id"]]
    status, body, _ = await server.request("GET", "/api/v1/deliveries", token=CRM_TOKEN)
    assert status == 200
    assert {d["flow"] for d in body["items"]} == {"crm-finance"}
    for flow in ("trading-treasury", "trading-finance"):
        status, body, _ = await server.request(
            "GET", f"/api/v1/deliveries?flow={flow}&key=PO-1", token=CRM_TOKEN
        )
        assert status == 200 and body["items"] == [], body

    # Trading reads its own, and nothing of the CRM's.
    status, body, _ = await server.request("GET", f"/api/v1/documents/{order['id']}", token=TOKEN)
    assert status == 200 and body["payload"]["payee_account"] == "6222"
    status, body, _ = await server.request(
        "GET", f"/api/v1/deliveries/{trading_delivery}", token=TOKEN
    )
    assert status == 200 and body["flow"].startswith("trading-")
    status, body, _ = await server.request("GET", "/api/v1/documents?key=PO-1", token=TOKEN)
    assert [d["id"] for d in body["items"]] == [order["id"]]
    status, body, _ = await server.request("GET", "/api/v1/deliveries?key=PO-1", token=TOKEN)
    assert {d["flow"] for d in body["items"]} == {"trading-treasury", "trading-finance"}

    # A person with the viewer role reads everything.
    status, body, _ = await server.request("GET", "/api/v1/documents?key=PO-1", token=VIEWER_TOKEN)
    assert {d["id"] for d in body["items"]} == {order["id"], customer["id"]}


async def test_a_systems_deliveries_page_through_its_own_flows_only(server: Api) -> None:
    for i in range(5):
        await _submit(server, TOKEN, "payment_order", pay(f"PO-{i}"))
        await _submit(server, CRM_TOKEN, "customer", {"customer_id": f"C-{i}"})
    seen: list[int] = []
    before = ""
    while True:
        status, body, _ = await server.request(
            "GET", f"/api/v1/deliveries?limit=3{before}", token=TOKEN
        )
        assert status == 200
        seen.extend(d["id"] for d in body["items"])
        assert all(d["flow"].startswith("trading-") for d in body["items"])
        if body["next"] is None:
            break
        before = f"&before={body['next']}"
    assert len(seen) == 10 and seen == sorted(seen, reverse=True)


async def test_a_systems_token_reads_nothing_else(server: Api) -> None:
    for path in (
        "/api/v1/status",
        "/api/v1/events",
        "/api/v1/contracts",
        "/api/v1/incidents",
        "/api/v1/maintenance",
        "/api/v1/reconcile/runs",
        "/api/v1/drills/runs",
        "/api/v1/alerts",
    ):
        status, body, _ = await server.request("GET", path, token=CRM_TOKEN)
        assert status == 403, (path, body)
        assert "needs the viewer role" in body["error"]["message"], body


# -- people: personal tokens with the console's roles -------------------------------------------


async def test_roles_decide_and_403_names_the_role_needed(server: Api) -> None:
    pause = "/api/v1/flows/trading-finance/pause"
    status, body, _ = await server.request("GET", "/api/v1/status", token=VIEWER_TOKEN)
    assert status == 200
    status, body, _ = await server.request("POST", pause, token=VIEWER_TOKEN)
    assert status == 403
    assert body["error"]["message"] == ("this call needs the operator role; your token has viewer")
    status, body, _ = await server.request("POST", pause, token=TOKEN)
    assert status == 403 and "needs the operator role" in body["error"]["message"]
    assert "trading" in body["error"]["message"]

    status, body, _ = await server.request("POST", pause, token=OPERATOR_TOKEN)
    assert status == 200, body
    status, body, _ = await server.request(
        "POST", "/api/v1/flows/trading-finance/resume", token=CHIEF_TOKEN
    )
    assert status == 200, body
    status, body, _ = await server.request(
        "POST", "/api/v1/flows/trading-finance/pause", token=ADMIN_TOKEN
    )
    assert status == 200, body
    actors = [(a["action"], a["actor"]) for a in server.hub.audit()]
    assert actors == [("pause", "api:admin"), ("resume", "api:chief"), ("pause", "api:duty")]

    # Publishing a contract is for admins; checking one is for operators.
    schema = {"type": "object", "required": ["order_no"]}
    publish = "/api/v1/contracts/payment_order/publish"
    status, body, _ = await server.request(
        "POST", publish, json={"schema": schema}, token=OPERATOR_TOKEN
    )
    assert status == 403
    assert body["error"]["message"] == "this call needs the admin role; your token has operator"
    check = "/api/v1/contracts/payment_order/check"
    status, body, _ = await server.request("POST", check, json=schema, token=VIEWER_TOKEN)
    assert status == 403 and "needs the operator role" in body["error"]["message"]
    status, body, _ = await server.request("POST", check, json=schema, token=OPERATOR_TOKEN)
    assert status == 200, body
    status, body, _ = await server.request(
        "POST",
        publish,
        json={"schema": schema, "force": True, "reason": "agreed with trading"},
        token=CHIEF_TOKEN,
    )
    assert status == 200, body


async def test_no_token_or_an_unknown_one_is_401(server: Api) -> None:
    for token in (None, "nobody-has-this-token"):
        for method, path in (
            ("GET", "/api/v1/status"),
            ("GET", "/api/v1/deliveries"),
            ("POST", "/api/v1/flows/trading-finance/pause"),
        ):
            status, body, headers = await server.request(method, path, token=token)
            assert status == 401, (method, path, body)
            assert headers.get("WWW-Authenticate") == "Bearer"
    assert server.hub.audit() == []


async def test_without_any_admin_credential_the_api_is_closed(
    server: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: no INTERLINK_ADMIN_TOKEN meant anyone could re-push, pause and read."""
    monkeypatch.delenv("INTERLINK_ADMIN_TOKEN")
    for variable in ("TEST_VIEWER_TOKEN", "TEST_DUTY_TOKEN", "TEST_CHIEF_TOKEN"):
        monkeypatch.delenv(variable)
    status, _, _ = await server.request("POST", "/api/v1/flows/trading-finance/pause", token=None)
    assert status == 401
    status, _, _ = await server.request("POST", "/api/v1/repush", json={}, token=None)
    assert status == 401
    status, _, _ = await server.request("GET", "/api/v1/status", token=None)
    assert status == 401
    assert server.hub.audit() == []


# -- cross-site requests: only application/json changes state ------------------------------------


@pytest.mark.parametrize("mode", ["secure", "insecure"])
async def test_a_cross_site_form_cannot_pause_a_flow(mode: str, server: Api, insecure: Api) -> None:
    api = server if mode == "secure" else insecure
    token = OPERATOR_TOKEN if mode == "secure" else None
    pause = "/api/v1/flows/trading-finance/pause"
    for content_type, data in (
        ("application/x-www-form-urlencoded", b"note=x"),
        ("text/plain", b"anything"),
        ("multipart/form-data; boundary=b", b"--b--\r\n"),
    ):
        status, body, _ = await api.request(
            "POST", pause, data=data, headers={"Content-Type": content_type}, token=token
        )
        assert status == 415, (content_type, body)
        assert body["error"]["code"] == "unsupported_media_type"
        assert "application/json" in body["error"]["message"]
    # A POST with no body and no type (what a no-cors fetch sends) is refused too.
    async with aiohttp.ClientSession() as raw:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with raw.post(api.url + pause, headers=headers) as response:
            assert response.status == 415
    assert api.hub.audit() == []
    assert api.hub.status()["flows"]["trading-finance"]["hold"] is None

    # The real client: application/json with an empty body.
    status, body, _ = await api.request(
        "POST", pause, headers={"Content-Type": "application/json"}, token=token
    )
    assert status == 200, body
    assert api.hub.audit()[0]["actor"] == ("api:duty" if token else "api")


async def test_intake_takes_json_and_ndjson_only(server: Api) -> None:
    line = b'{"type": "payment_order", "payload": {"order_no": "PO-9", "amount": "1"}}\n'
    for content_type, code in (
        ("application/x-ndjson", 202),
        ("application/json; charset=utf-8", 202),
        ("text/plain", 415),
        ("application/x-www-form-urlencoded", 415),
    ):
        status, body, _ = await server.request(
            "POST",
            "/api/v1/documents",
            data=line,
            headers={"Content-Type": content_type},
            token=TOKEN,
        )
        assert status == code, (content_type, body)


# -- DNS rebinding: the Host header must name this server --------------------------------------


async def test_a_forged_host_header_is_refused(server: Api) -> None:
    order = await _submit(server, TOKEN, "payment_order", pay("PO-1"))
    for path in (f"/api/v1/documents/{order['id']}", "/api/v1/status", "/login", "/healthz"):
        status, body, _ = await server.request(
            "GET", path, headers={"Host": f"attacker.example:{server.port}"}
        )
        assert status == 400, (path, body)
        assert "attacker.example" in str(body)
    for host in ("localhost", f"127.0.0.1:{server.port}", f"LOCALHOST:{server.port}"):
        status, _, _ = await server.request("GET", "/api/v1/status", headers={"Host": host})
        assert status == 200, host


async def test_allowed_hosts_names_the_hosts_to_accept(
    make_hub: Callable[[str], Hub],
) -> None:
    named = TOPOLOGY + "allowed_hosts: [interlink.example.com]\n"
    api = await Api(make_hub(named)).start()
    try:
        status, _, _ = await api.request(
            "GET", "/api/v1/status", headers={"Host": "interlink.example.com:8600"}
        )
        assert status == 200
        status, _, _ = await api.request(
            "GET", "/api/v1/status", headers={"Host": "evil.example.com"}
        )
        assert status == 400
    finally:
        await api.stop()


async def test_a_star_in_allowed_hosts_accepts_any(make_hub: Callable[[str], Hub]) -> None:
    api = await Api(make_hub(TOPOLOGY + 'allowed_hosts: ["*"]\n')).start()
    try:
        status, _, _ = await api.request(
            "GET", "/api/v1/status", headers={"Host": "anything.example"}
        )
        assert status == 200
    finally:
        await api.stop()


# -- serve never runs an open management API ----------------------------------------------------

SERVE_TOPOLOGY = """\
database: sqlite:///hub.db
systems:
  trading: {token_env: TRADING_TOKEN}
"""


def _serve(tmp_path: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    (tmp_path / "interlink.yaml").write_text(SERVE_TOPOLOGY)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("INTERLINK_", "TEST_"))}
    return subprocess.run(
        [*COMMAND, "serve", *args],
        cwd=tmp_path,
        env={**base, **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_serve_refuses_to_start_without_a_management_credential(tmp_path: Path) -> None:
    done = _serve(tmp_path, env={"TRADING_TOKEN": "t"})
    assert done.returncode == 2, done.stderr
    assert "INTERLINK_ADMIN_TOKEN" in done.stderr and "token_env" in done.stderr
    assert "--insecure" in done.stderr and "Traceback" not in done.stderr


def test_serve_refuses_insecure_off_loopback(tmp_path: Path) -> None:
    done = _serve(tmp_path, "--insecure", "--host", "0.0.0.0", env={})
    assert done.returncode == 2, done.stderr
    assert "loopback" in done.stderr and "Traceback" not in done.stderr


async def _start_serve(
    tmp_path: Path, *args: str, env: dict[str, str], topology: str = SERVE_TOPOLOGY
) -> tuple[Any, int]:
    from tests.acceptance.test_serve import free_port

    (tmp_path / "interlink.yaml").write_text(topology)
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("INTERLINK_", "TEST_"))}
    proc = await asyncio.create_subprocess_exec(
        *COMMAND,
        "serve",
        "--no-workers",
        "--port",
        str(port),
        *args,
        cwd=tmp_path,
        env={**base, **env},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as r:
                    if r.status == 200:
                        return proc, port
            except aiohttp.ClientConnectionError:
                pass
            assert proc.returncode is None, (await proc.communicate())[1].decode()
            assert time.monotonic() < deadline, "serve did not start listening"
            await asyncio.sleep(0.05)  # waiting for a process to listen, not for a retry


async def _stop(proc: Any) -> str:
    proc.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(proc.communicate(), 20)
    return str(err.decode())


async def test_serve_insecure_on_loopback_starts_and_warns(tmp_path: Path) -> None:
    proc, port = await _start_serve(tmp_path, "--insecure", env={})
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/api/v1/status") as r,
        ):
            assert r.status == 200
    finally:
        err = await _stop(proc)
    assert "--insecure" in err and "no token" in err


async def test_serve_with_a_personal_token_only(tmp_path: Path) -> None:
    text = SERVE_TOPOLOGY + "users:\n  - {name: duty, role: operator, token_env: DUTY_TOKEN}\n"
    proc, port = await _start_serve(tmp_path, env={"DUTY_TOKEN": OPERATOR_TOKEN}, topology=text)
    try:
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{port}/api/v1/status"
            async with session.get(url) as r:
                assert r.status == 401
            headers = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
            async with session.get(url, headers=headers) as r:
                assert r.status == 200
    finally:
        await _stop(proc)


# -- init: a generated token, out of the box ---------------------------------------------------


def test_init_writes_a_private_env_file_and_never_overwrites_it(tmp_path: Path) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("INTERLINK_", "TEST_"))}
    run = lambda *a: subprocess.run(  # noqa: E731
        [*COMMAND, *a], cwd=tmp_path, env=base, capture_output=True, text=True, timeout=30
    )
    done = run("init")
    assert done.returncode == 0, done.stderr
    env_file = tmp_path / "interlink.env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    values = dict(
        line.split("=", 1)
        for line in env_file.read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert set(values) >= {"INTERLINK_ADMIN_TOKEN", "TRADING_TOKEN"}
    assert all(len(v) >= 32 for v in values.values())
    assert values["INTERLINK_ADMIN_TOKEN"] != values["TRADING_TOKEN"]
    before = env_file.read_text()
    assert run("init", "--force").returncode == 0
    assert env_file.read_text() == before
    assert "interlink.env" in (tmp_path / ".gitignore").read_text().splitlines()
