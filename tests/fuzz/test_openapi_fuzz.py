"""Schemathesis against the app's own OpenAPI document, over a real uvicorn server.

No operation may answer 5xx, and every answer must conform to the document: a status code it
lists, the content type it declares, and a body matching the declared schema.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from interlink.clock import FakeClock
from interlink.config import load
from interlink.features.registry import FEATURES
from interlink.service import Hub
from interlink.web.api import create_app

TOKEN = "fuzz-token"
# Examples per operation: a few in `make test`; INTERLINK_FUZZ_EXAMPLES=500 for a deep run.
EXAMPLES = int(os.environ.get("INTERLINK_FUZZ_EXAMPLES", "12"))
ADMIN_TOKEN = "fuzz-admin-token"  # management calls need a person's token or this one
CONTRACT = {
    "type": "object",
    "required": ["order_no", "amount"],
    "properties": {
        "order_no": {"type": "string"},
        "amount": {"type": "string"},
        "kind": {"type": "string", "enum": ["pay", "refund"]},
    },
}
# Every capability has something to act on: a rolled-out flow with a fallback, a mapped
# flow with a code table, a file-exchange bank, and a file-drop source.
TOPOLOGY = """\
database: sqlite:///fuzz.db
code_tables:
  payment_kind: {pay: "01", refund: "02"}
systems:
  trading:
    token_env: FUZZ_TOKEN
    sources:
      month-end: {kind: files, path: drop, document: payment_order, settle: 0s}
  treasury: {url: "http://127.0.0.1:9", timeout: 1s}
  legacy: {url: "http://127.0.0.1:9", timeout: 1s}
  finance: {url: "http://127.0.0.1:9", timeout: 1s}
  bank:
    transport: file
    file_exchange:
      location: out
      columns: [{name: order_no, field: order_no}]
      results: {location: in, key: order_no, status: status, accepted: ["S"]}
documents:
  payment_order:
    key: order_no
    amount: amount
    contract: contract.json
flows:
  trading-treasury:
    from: trading
    to: treasury
    document: payment_order
    ordered: true
    rollout: {stage: pilot, share: 10%, outside: {fallback: trading-legacy}}
  trading-legacy: {from: trading, to: legacy, document: payment_order, ordered: true}
  trading-finance:
    from: trading
    to: finance
    document: payment_order
    map:
      fields:
        no: order_no
        fen: {path: amount, format: fen}
        kind: {path: kind, code: payment_kind}
  trading-bank: {from: trading, to: bank, document: payment_order}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory: Path = tmp_path_factory.mktemp("fuzz")
    for folder in ("drop", "out", "in"):
        (directory / folder).mkdir()
    (directory / "contract.json").write_text(json.dumps(CONTRACT))
    (directory / "interlink.yaml").write_text(textwrap.dedent(TOPOLOGY))
    os.environ["FUZZ_TOKEN"] = TOKEN
    os.environ["INTERLINK_ADMIN_TOKEN"] = ADMIN_TOKEN
    hub = Hub(load(directory / "interlink.yaml"), clock=FakeClock(), features=FEATURES)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    uv = uvicorn.Server(
        uvicorn.Config(create_app(hub, workers=False), log_level="error", lifespan="on")
    )
    thread = threading.Thread(target=lambda: asyncio.run(uv.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)  # waiting for the listener, not for a retry
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        uv.should_exit = True
        thread.join(10)
        sock.close()
        asyncio.run(hub.close())
        del os.environ["FUZZ_TOKEN"]
        del os.environ["INTERLINK_ADMIN_TOKEN"]


def not_a_server_error(ctx: object, response: object, case: object) -> bool:
    status = response.status_code  # type: ignore[attr-defined]
    assert status < 500, f"{case}: answered {status}"
    return True


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _headers(method: str, path: str) -> dict[str, str]:
    # Intake takes the system's token; everything else the admin's, to reach every route.
    intake = method.upper() == "POST" and path == "/api/v1/documents"
    return {"Authorization": f"Bearer {TOKEN if intake else ADMIN_TOKEN}"}


def test_every_operation_conforms(server: str) -> None:
    # Each operation gets its own Hypothesis run (schemathesis's pytest plugin does not yet
    # support this pytest; its strategies do).
    schema = schemathesis.openapi.from_url(f"{server}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    failures = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        def run(case: schemathesis.Case) -> None:
            headers = _headers(case.method, case.path)
            case.call_and_validate(base_url=server, headers=headers, checks=CHECKS)

        try:
            run()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)
