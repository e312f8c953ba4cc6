"""Hostile input: each attack of issue 11's "Hostile input stalls or floods the hub" and the
reconciliation endpoint's credential leak, against the real surfaces (the HTTP API on a
real server, the CLI as a process, loopback HTTP servers for the query endpoint)."""

from __future__ import annotations

import asyncio
import bz2
import io
import json
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from interlink.config import ReconcileEndpoint, Topology
from interlink.errors import ConfigError, InputError, Invalid
from interlink.features.contracts.service import contracts
from interlink.features.reconcile import sources
from interlink.intake import Item
from interlink.service import Hub
from interlink.validation import ContractValidator
from tests.acceptance.conftest import run_cli
from tests.conftest import TOKEN, TREASURY_FLOW, Api, pay, submit
from tests.console_support import CONSOLE_TOPOLOGY, ENV, Browser

ADMIN = "hostile-input-admin-token"
EVIL = "^(.*?)*!$"


@pytest.fixture(autouse=True)
def _admin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERLINK_ADMIN_TOKEN", ADMIN)


# -- contracts: patterns run on a linear-time engine -------------------------------------------


async def test_a_backtracking_pattern_in_a_contract_check_does_not_stall_the_hub(
    hub: Hub, api: Api
) -> None:
    # 27 characters against ^(.*?)*!$ took Python's re about 6 s per document, holding the GIL.
    await submit(hub, pay("R1", memo="a" * 27), pay("R2", memo="a" * 27))
    proposed = {"type": "object", "properties": {"memo": {"type": "string", "pattern": EVIL}}}
    check = asyncio.create_task(
        api.request(
            "POST",
            "/api/v1/contracts/payment_order/check",
            token=ADMIN,
            json=proposed,
            timeout=aiohttp.ClientTimeout(total=60),
        )
    )
    await asyncio.sleep(0.2)  # let the check start; this waits for no retry
    started = time.monotonic()
    status, _, _ = await api.request(
        "GET", "/healthz", token=None, timeout=aiohttp.ClientTimeout(total=1.5)
    )
    assert status == 200
    assert time.monotonic() - started < 1.0
    status, report, _ = await check
    assert status == 200, report
    assert isinstance(report, dict) and report["replay"]["refused"] == 2


async def test_an_upstream_payload_cannot_make_intake_spend_seconds_in_a_regex(hub: Hub) -> None:
    schema = {"type": "object", "properties": {"memo": {"type": "string", "pattern": "^(a+)+$"}}}
    contracts(hub).publish("payment_order", schema, "test", replay=0, force=True, reason="test")
    started = time.monotonic()
    [result] = await hub.intake.submit(
        hub.topology.systems["trading"], [Item("payment_order", pay("X1", memo="a" * 27 + "!"))]
    )
    assert time.monotonic() - started < 1.0
    assert isinstance(result, Invalid)
    assert result.problems[0]["path"] == "$.memo"


@pytest.mark.parametrize("pattern", ["^(?=a)b", r"(a)\1", "(?<!x)y"])
def test_patterns_the_linear_engine_cannot_run_are_refused(hub: Hub, pattern: str) -> None:
    schema = {"type": "object", "properties": {"memo": {"type": "string", "pattern": pattern}}}
    with pytest.raises(Invalid) as refused:
        contracts(hub).check("payment_order", schema, replay=0)
    assert refused.value.problems[0]["path"] == "$/properties/memo/pattern"
    with pytest.raises(ConfigError):
        ContractValidator(schema)
    with_keys = {"type": "object", "patternProperties": {pattern: {"type": "string"}}}
    with pytest.raises(Invalid):
        contracts(hub).publish("payment_order", with_keys, "test", replay=0)


def test_ecma_escapes_still_work_on_the_linear_engine() -> None:
    validator = ContractValidator(
        {
            "type": "object",
            "properties": {"name": {"type": "string", "pattern": "^[\\u4e00-\\u9fff]+$"}},
            "patternProperties": {"^x_\\d+$": {"type": "integer"}},
            "additionalProperties": False,
        }
    )
    assert validator.valid({"name": "张三", "x_1": 2})
    assert not validator.valid({"name": "abc"})
    assert not validator.valid({"name": "张三\n"})  # $ is the end of the text, as in ECMA 262
    assert [p["path"] for p in validator.problems({"name": "张三", "x_1": "two", "y": 1})] == [
        "$.x_1",
        "$.y",  # the field the contract does not allow, at its own path
    ]


# -- intake: items per batch -------------------------------------------------------------------


async def test_an_ndjson_flood_is_refused_whole_before_any_result_is_built(api: Api) -> None:
    body = b"{}\n" * 200_000
    status, answer, headers = await api.request(
        "POST",
        "/api/v1/documents",
        token=TOKEN,
        data=body,
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert status == 413, str(answer)[:200]
    assert isinstance(answer, dict) and "10000" in answer["error"]["message"]
    assert int(headers["Content-Length"]) < 1000


async def test_a_json_array_over_the_batch_limit_is_refused(api: Api) -> None:
    status, answer, _ = await api.request(
        "POST", "/api/v1/documents", token=TOKEN, json=[{}] * 10_001
    )
    assert status == 413 and isinstance(answer, dict)
    assert "engine.max_batch_items" in answer["error"]["message"]


async def test_the_batch_limit_is_a_topology_setting(
    make_hub: Callable[[str], Hub],
) -> None:
    from tests.conftest import TOPOLOGY

    hub = make_hub(TOPOLOGY.replace("engine:\n", "engine:\n  max_batch_items: 2\n"))
    api = await Api(hub).start()
    try:
        lines = [
            json.dumps({"type": "payment_order", "payload": pay(f"B{i}")}).encode() + b"\n"
            for i in range(3)
        ]
        ndjson = {"Content-Type": "application/x-ndjson"}
        status, _, _ = await api.request(
            "POST", "/api/v1/documents", token=TOKEN, data=b"".join(lines), headers=ndjson
        )
        assert status == 413
        status, body, _ = await api.request(
            "POST", "/api/v1/documents", token=TOKEN, data=b"".join(lines[:2]), headers=ndjson
        )
        assert status == 202, body
    finally:
        await api.stop()


# -- multipart uploads: credential first, size before the body is read -------------------------


async def _raw(port: int, head: str, body: bytes = b"", timeout: float = 3.0) -> int:
    """Send a request head and part of a body, never the rest; the answer's status."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
        return int(line.split()[1])
    finally:
        writer.close()


def _multipart_head(path: str, token: str | None, length: int | None, extra: str = "") -> str:
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: multipart/form-data; boundary=XyZ",
    ]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    lines.append(
        f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    )
    if extra:
        lines.append(extra)
    return "\n".join(lines) + "\n"


PART = b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\n'


@pytest.mark.parametrize(
    "path", ["/api/v1/incidents/1/attachments", f"/api/v1/reconcile/{TREASURY_FLOW}"]
)
async def test_an_upload_without_a_valid_credential_is_refused_before_its_body_is_read(
    api: Api, path: str
) -> None:
    # Three megabytes announced, a few bytes sent: an answer now means nothing was waited for.
    status = await _raw(api.port, _multipart_head(path, "not-a-token", 3_000_000), PART)
    assert status == 401


@pytest.mark.parametrize(
    ("path", "length"),
    [
        ("/api/v1/incidents/1/attachments", 6 * 1024 * 1024),
        (f"/api/v1/reconcile/{TREASURY_FLOW}", 300 * 1024 * 1024),
    ],
)
async def test_an_upload_announced_over_the_limit_is_refused_before_it_is_read(
    api: Api, path: str, length: int
) -> None:
    assert await _raw(api.port, _multipart_head(path, ADMIN, length), PART) == 413


async def test_an_upload_streamed_past_the_limit_stops_at_the_limit(api: Api) -> None:
    head = _multipart_head("/api/v1/incidents/1/attachments", ADMIN, None)
    reader, writer = await asyncio.open_connection("127.0.0.1", api.port)
    try:
        writer.write(head.replace("\n", "\r\n").encode() + b"\r\n")
        writer.write(f"{len(PART):x}\r\n".encode() + PART + b"\r\n")
        chunk = b"x" * 65536
        for _ in range(6 * 1024 * 1024 // len(chunk)):
            writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        await writer.drain()
        # The body never ends: only a server that stops at the limit answers.
        line = await asyncio.wait_for(reader.readline(), 3.0)
        assert int(line.split()[1]) == 413
    finally:
        writer.close()


async def test_a_console_upload_by_a_viewer_is_refused_before_its_body_is_read(
    monkeypatch: pytest.MonkeyPatch, make_hub: Callable[[str], Hub]
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    api = await Api(make_hub(CONSOLE_TOPOLOGY)).start()
    browser = Browser(api.url)
    try:
        assert await browser.sign_in("auditor") in (302, 303)
        cookie = "; ".join(f"{c.key}={c.value}" for c in browser.session.cookie_jar)
        head = _multipart_head("/incidents/1/attach", None, 3_000_000, f"Cookie: {cookie}")
        assert await _raw(api.port, head, PART) == 403
    finally:
        await browser.close()
        await api.stop()


# -- reconciliation: encodings, XLSX, CSV sniffing ---------------------------------------------


def test_a_bytes_codec_is_refused_as_an_encoding_by_the_cli(
    tmp_path: Path, topology: Topology
) -> None:
    bomb = tmp_path / "export.csv"
    bomb.write_bytes(bz2.compress(b"0" * (50 * 1024 * 1024)))  # 50 MB in a few hundred bytes
    for codec in ("bz2_codec", "rot13"):
        done = run_cli(
            "reconcile", TREASURY_FLOW, "--file", str(bomb), "--encoding", codec,
            "-c", str(topology.path), cwd=tmp_path,
        )  # fmt: skip
        assert done.code == 2, (codec, done.err)
        assert "not an allowed text encoding" in done.err and "Traceback" not in done.err


async def test_a_bytes_codec_is_refused_as_an_encoding_by_the_api(api: Api) -> None:
    form = aiohttp.FormData()
    form.add_field("file", bz2.compress(b"0" * 1_000_000), filename="x.csv")
    status, body, _ = await api.request(
        "POST",
        f"/api/v1/reconcile/{TREASURY_FLOW}",
        token=ADMIN,
        params={"encoding": "bz2_codec"},
        data=form,
    )
    assert status == 400 and isinstance(body, dict)
    assert "not an allowed text encoding" in body["error"]["message"]


def _workbook(tmp_path: Path, sheet: Callable[[bytes], bytes]) -> Path:
    """A real workbook whose first sheet's XML is rewritten by ``sheet``."""
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["order_no", "amount"])
    book.active.append(["P1", "1.00"])
    plain = io.BytesIO()
    book.save(plain)
    path = tmp_path / "export.xlsx"
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = sheet(data)
            out.writestr(info.filename, data)
    return path


def _padded(data: bytes) -> bytes:
    # 64 MB of blanks inside the sheet's XML: valid, tiny once packed (a zip bomb's shape).
    return data.replace(b"<sheetData>", b"<sheetData>" + b" " * (64 * 1024 * 1024), 1)


def test_an_xlsx_zip_bomb_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    path = _workbook(tmp_path, _padded)
    started = time.monotonic()
    with pytest.raises(InputError, match="zip bomb"):
        sources.read_file(path)
    assert time.monotonic() - started < 1.0


def test_an_xlsx_over_the_uncompressed_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _workbook(tmp_path, lambda data: data)
    monkeypatch.setattr(sources, "MAX_XLSX_UNCOMPRESSED", 1000)
    with pytest.raises(InputError, match="unpacks to"):
        sources.read_file(path)


def test_an_xlsx_with_xml_entities_is_refused(tmp_path: Path) -> None:
    laughs = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">]>'

    def entities(data: bytes) -> bytes:
        return laughs + data[data.index(b"<worksheet") :].replace(b"P1", b"&a;")

    path = _workbook(tmp_path, entities)
    with pytest.raises(InputError, match="not a readable XLSX"):
        records = sources.read_file(path)
        list(records.rows)


def test_the_csv_dialect_is_sniffed_from_the_first_few_kilobytes(tmp_path: Path) -> None:
    # ',"a' repeated: csv.Sniffer's quote regex rescans the rest of the sample from every
    # quote, 13 s over 64 KB.
    path = tmp_path / "export.csv"
    path.write_text("order_no,amount\n" + ',"a' * 22_000 + "\n")
    started = time.monotonic()
    records = sources.read_file(path)
    records.close()
    assert time.monotonic() - started < 1.0


# -- reconciliation query endpoint: the token stays home ---------------------------------------


class _Server:
    """A loopback HTTP server answering from a table of path → (status, headers, body)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.seen: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.seen.append((self.path, self.headers.get("Authorization")))
                status, headers, body = server.routes.get(self.path.split("?")[0], (404, {}, b"{}"))
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[_Server, _Server]]:
    monkeypatch.setenv("TEST_RECONCILE_TOKEN", "endpoint-secret")
    home, elsewhere = _Server(), _Server()
    elsewhere.routes["/items"] = (200, {}, b'{"items": [], "next": null}')
    yield home, elsewhere
    home.close()
    elsewhere.close()


def _endpoint(url: str) -> ReconcileEndpoint:
    return ReconcileEndpoint(url=url, next_path="next", token_env="TEST_RECONCILE_TOKEN")


def test_the_query_endpoint_follows_no_redirect(servers: tuple[_Server, _Server]) -> None:
    home, elsewhere = servers
    home.routes["/records"] = (302, {"Location": f"{elsewhere.url}/items"}, b"")
    with pytest.raises(InputError, match="redirects are not followed"):
        sources.read_endpoint(_endpoint(f"{home.url}/records"), None, None)
    assert elsewhere.seen == []


def test_the_query_endpoint_follows_next_links_on_its_own_origin_only(
    servers: tuple[_Server, _Server],
) -> None:
    home, elsewhere = servers
    page = {"items": [{"order_no": "P1"}], "next": f"{elsewhere.url}/items"}
    home.routes["/records"] = (200, {}, json.dumps(page).encode())
    records = sources.read_endpoint(_endpoint(f"{home.url}/records"), None, None)
    with pytest.raises(InputError, match="same-origin"):
        list(records.rows)
    assert elsewhere.seen == []
    assert home.seen and all(auth == "Bearer endpoint-secret" for _, auth in home.seen)


def test_the_query_endpoint_answer_is_read_with_a_cap(servers: tuple[_Server, _Server]) -> None:
    home, _ = servers
    big = {"items": [{"order_no": f"P{i}", "memo": "x" * 100} for i in range(200)]}
    home.routes["/records"] = (200, {}, json.dumps(big).encode())
    with pytest.raises(InputError, match="over 10000 bytes"):
        sources.read_endpoint(_endpoint(f"{home.url}/records"), None, None, max_bytes=10_000)


def test_the_query_endpoint_reads_no_local_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # urllib opens file: URLs too: a topology's endpoint must not turn into a local file read.
    monkeypatch.setenv("TEST_RECONCILE_TOKEN", "endpoint-secret")
    secret = tmp_path / "records.json"
    secret.write_text(json.dumps({"items": [{"order_no": "P1"}]}))
    with pytest.raises(InputError, match="not an http"):
        records = sources.read_endpoint(_endpoint(secret.as_uri()), None, None)
        list(records.rows)
