"""The sources over HTTP (list, poll, pause, resume, problems), and a paged query API of the
upstream as a source: cursor paging against a real loopback server, and its safety rules."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from interlink.clock import FakeClock
from interlink.config import Topology
from interlink.features.registry import FEATURES
from interlink.features.sources.service import sources
from interlink.service import Hub
from tests.conftest import Api

ITEMS = [{"id": i, "order_no": f"Q{i}", "amount": f"{i}.00"} for i in range(1, 6)]
ITEMS.append({"id": 6, "amount": "6.00"})  # no business key: refused, recorded

TOPOLOGY = """\
timezone: Asia/Shanghai
database: sqlite:///hub.db
systems:
  trading:
    sources:
      orders-api:
        kind: api
        document: payment_order
        batch: 10
        endpoint:
          url: {url}/orders
          page_size: 2
{extra}
  treasury:
    url: http://127.0.0.1:9
documents:
  payment_order:
    key: order_no
flows:
  trading-treasury:
    from: trading
    to: treasury
    document: payment_order
    path: /payments
"""


class Upstream(BaseHTTPRequestHandler):
    asked: list[dict[str, list[str]]] = []

    def do_GET(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(parts.query)
        Upstream.asked.append(query)
        if parts.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest")
            self.end_headers()
            return
        after = int(query.get("after", ["0"])[0])
        size = int(query["size"][0])
        page = [i for i in ITEMS if i["id"] > after][:size]
        body = json.dumps({"items": page}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Upstream.asked = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def make(
    write_topology: Callable[[str], Topology], clock: FakeClock, upstream: str
) -> Iterator[Callable[..., Hub]]:
    made: list[Hub] = []

    def build(extra: str = "          allow_local: true", url: str = upstream) -> Hub:
        hub = Hub(write_topology(TOPOLOGY.format(url=url, extra=extra)), clock=clock,
                  features=FEATURES)  # fmt: skip
        made.append(hub)
        return hub

    yield build
    for hub in made:
        hub.store.close()


def test_cursor_paging_over_a_query_api(make) -> None:
    hub = make()
    service = sources(hub)

    result = service.poll("orders-api")

    assert (result["read"], result["accepted"], result["refused"]) == (6, 5, 1)
    assert result["cursor"] == 6
    assert [q.get("after") for q in Upstream.asked] == [None, ["2"], ["4"], ["6"]]
    assert service.problems()[0]["ref"] == "6"
    assert service.poll("orders-api")["read"] == 0
    assert [q["after"] for q in Upstream.asked[4:]] == [["6"]]


def test_local_addresses_and_redirects_are_refused(make, upstream: str) -> None:
    hub = make(extra="")
    result = sources(hub).poll("orders-api")
    assert "local address 127.0.0.1" in result["error"] and "allow_local" in result["error"]
    assert Upstream.asked == []
    assert [e["kind"] for e in hub.events()] == ["source_unreachable"]
    hub.topology.path.unlink()

    moved = make(url=upstream + "/moved?x=1")
    result = sources(moved).poll("orders-api")
    assert "HTTP 302" in result["error"] and "not followed" in result["error"]


@pytest.fixture
async def api(make) -> AsyncIterator[Api]:
    server = await Api(make()).start()
    yield server
    await server.stop()


async def test_the_sources_api(api: Api) -> None:
    status, body, _ = await api.request("GET", "/api/v1/sources")
    assert status == 200
    (item,) = body["items"]  # type: ignore[index]
    assert (item["name"], item["system"], item["kind"], item["cursor"]) == (
        "orders-api", "trading", "api", None,
    )  # fmt: skip

    status, body, _ = await api.request(
        "POST", "/api/v1/sources/orders-api/pause", json={"note": "n"}
    )
    assert status == 200 and body == {"source": "orders-api", "paused": True}
    status, body, _ = await api.request("POST", "/api/v1/sources/orders-api/poll")
    assert body == {"source": "orders-api", "paused": True, "read": 0}
    status, body, _ = await api.request("POST", "/api/v1/sources/orders-api/resume")
    assert status == 200
    status, body, _ = await api.request("POST", "/api/v1/sources/orders-api/poll")
    assert status == 200 and body["accepted"] == 5  # type: ignore[index]

    status, body, _ = await api.request("GET", "/api/v1/sources/problems?source=orders-api")
    assert status == 200 and body["items"][0]["ref"] == "6"  # type: ignore[index]
    status, body, _ = await api.request("GET", "/api/v1/sources")
    assert body["items"][0]["cursor"] == 6  # type: ignore[index]
    assert [a["action"] for a in api.hub.audit("source:orders-api")] == [
        "source_resume", "source_pause",
    ]  # fmt: skip

    status, body, _ = await api.request("POST", "/api/v1/sources/nope/poll")
    assert status == 404 and "orders-api" in json.dumps(body)
    status, _, _ = await api.request("GET", "/api/v1/sources", token=None)
    assert status == 401


def test_problems_are_listed_by_the_cli(make) -> None:
    from typer.testing import CliRunner

    from interlink.cli import app

    hub = make()
    sources(hub).poll("orders-api")
    runner = CliRunner()
    config = str(hub.topology.path)
    listed = runner.invoke(app, ["sources", "-c", config, "--json"])
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.output)["items"][0]["accepted"] == 5
    problems = runner.invoke(app, ["sources", "problems", "orders-api", "-c", config, "--json"])
    assert json.loads(problems.output)["items"][0]["problems"][0]["path"] == "$.order_no"
    unknown = runner.invoke(app, ["sources", "poll", "nope", "-c", config])
    assert unknown.exit_code == 2  # the message: test_the_sources_api's 404
