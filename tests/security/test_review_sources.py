"""Sources against hostile upstreams: a dropped symbolic link (which could name the hub's own
secrets) or an oversize file is refused unread; JSON nested deeper than the parser goes is
one refused line or row (never an exception that repeats the poll forever on the same file or
row); a query API on an IPv4-mapped loopback address is local."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from interlink.clock import FakeClock
from interlink.config import Topology
from interlink.errors import InputError
from interlink.features.registry import FEATURES
from interlink.features.sources.files import read_lines
from interlink.features.sources.outbox import Unreachable, _payload
from interlink.features.sources.query import QueryApi, local_address_problem
from interlink.features.sources.service import sources
from interlink.service import Hub

TOPOLOGY = """\
timezone: Asia/Shanghai
database: sqlite:///hub.db
engine: {max_upload_bytes: 4096}
systems:
  trading:
    sources:
      drop:
        kind: files
        path: drop
        document: payment_order
        settle: 0s
  treasury:
    url: http://127.0.0.1:9
documents:
  payment_order: {key: order_no}
flows:
  trading-treasury: {from: trading, to: treasury, document: payment_order, path: /p}
"""
DEEP = "[" * 100_000 + "]" * 100_000


@pytest.fixture
def hub(
    write_topology: Callable[[str], Topology], tmp_path: Path, clock: FakeClock
) -> Iterator[Hub]:
    (tmp_path / "drop").mkdir()
    h = Hub(write_topology(TOPOLOGY), clock=clock, features=FEATURES)
    yield h
    h.store.close()


def test_a_symbolic_link_in_the_drop_is_refused_unread(hub: Hub, tmp_path: Path) -> None:
    secret = tmp_path / "interlink.env"
    secret.write_text("order_no\nTOKEN=s3cret-value\n")
    (tmp_path / "drop" / "orders.csv").symlink_to(secret)
    result = sources(hub).poll("drop")
    assert "symbolic link" in result["failed"]
    assert result["read"] == 0
    problems = sources(hub).problems("drop")
    assert "s3cret" not in json.dumps(problems)
    assert (tmp_path / "drop" / "failed" / "orders.csv").is_symlink()
    assert secret.read_text().startswith("order_no")  # the target is untouched


def test_a_file_over_the_upload_bound_is_refused_unread(hub: Hub, tmp_path: Path) -> None:
    (tmp_path / "drop" / "big.csv").write_text("order_no\n" + "A-1\n" * 2000)
    result = sources(hub).poll("drop")
    assert "over engine.max_upload_bytes (4096)" in result["failed"]
    assert (tmp_path / "drop" / "failed" / "big.csv").exists()


def test_a_line_nested_too_deep_is_one_refused_line(hub: Hub, tmp_path: Path) -> None:
    path = tmp_path / "drop" / "deep.ndjson"
    deep = "[" * 1800 + "]" * 1800  # deeper than the parser goes, within the size bound
    path.write_text(f'{deep}\n{{"order_no": "N-1"}}\n')
    lines = list(read_lines(path, "auto", None))
    assert isinstance(lines[0][1], InputError) and "too deep" in lines[0][1].message
    assert lines[1] == (2, {"order_no": "N-1"})
    result = sources(hub).poll("drop")
    assert (result["accepted"], result["refused"]) == (1, 1)


def test_an_outbox_payload_nested_too_deep_is_a_refused_row() -> None:
    # Kept as text: intake refuses it (not an object) and the cursor moves past it.
    assert _payload(DEEP) == DEEP
    assert _payload(DEEP.encode()) == DEEP


def _api(answer: bytes) -> QueryApi:
    endpoint = SimpleNamespace(
        url="http://upstream.example.test/items", size_param="size", page_size=10,
        cursor_param="after", until_param=None, token_env=None, allow_local=True,
        items_path="items", cursor_path="id",
    )  # fmt: skip
    settings: Any = SimpleNamespace(
        endpoint=endpoint, document="payment_order", settle=timedelta(0)
    )
    api = QueryApi(settings)

    class Response:
        def __enter__(self) -> Response:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def read(self, n: int) -> bytes:
            return answer[:n]

    api.opener = SimpleNamespace(open=lambda request, timeout: Response())  # type: ignore[assignment]
    return api


def test_a_query_api_answer_nested_too_deep_is_unreachable(clock: FakeClock) -> None:
    assert _api(b'{"items": [{"id": 1}]}').read(None, 5, clock.now())[0][0].id == 1
    with pytest.raises(Unreachable, match="not JSON"):
        _api(('{"items": ' + DEEP + "}").encode()).read(None, 5, clock.now())


def test_an_ipv4_mapped_loopback_or_metadata_address_is_local() -> None:
    assert "local address 127.0.0.1" in (local_address_problem("http://[::ffff:127.0.0.1]/") or "")
    problem = local_address_problem("http://[::ffff:169.254.169.254]/latest")
    assert "169.254.169.254" in (problem or "")
    assert local_address_problem("http://[::ffff:192.0.2.1]/") is None


OUTBOX = """\
timezone: Asia/Shanghai
database: sqlite:///hub.db
systems:
  trading:
    sources:
      pay-outbox:
        kind: outbox
        url_env: TEST_SOURCE_DB
        document: payment_order
        table: TABLE
        columns: {id: ID, payload: payload}
  treasury:
    url: http://127.0.0.1:9
documents:
  payment_order: {key: order_no}
flows:
  trading-treasury: {from: trading, to: treasury, document: payment_order, path: /p}
"""


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("outbox; DROP TABLE documents", "id"),
        ('"outbox"', "id"),
        ("outbox", 'id" OR 1=1 --'),
        ("outbox", "id`"),
        ("a.b.c", "id"),
    ],
)
def test_outbox_identifiers_from_the_topology_cannot_carry_sql(
    write_topology: Callable[[str], Topology], table: str, column: str
) -> None:
    from interlink.errors import ConfigError

    text = OUTBOX.replace("TABLE", json.dumps(table)).replace("ID", json.dumps(column))
    with pytest.raises(ConfigError, match="is not a table or column name"):
        write_topology(text)
    # The same topology with plain names (any script, a schema) loads.
    write_topology(OUTBOX.replace("TABLE", "pay.付款单").replace("ID", "单号"))


def test_a_malformed_outbox_url_is_a_clear_error_without_the_password(
    write_topology: Callable[[str], Topology],
    tmp_path: Path,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topology = write_topology(OUTBOX.replace("TABLE", "outbox").replace("ID", "id"))
    monkeypatch.setenv("TEST_SOURCE_DB", "postgresql://app:s3cret-pw@db.example.test:port/x")
    hub = Hub(topology, clock=clock, features=FEATURES)
    try:
        result = sources(hub).poll("pay-outbox")
        assert "TEST_SOURCE_DB is not a usable database URL" in result["error"]
        assert "s3cret" not in json.dumps(result)
        assert "not a usable" in (sources(hub).status()[0]["error"] or "")
    finally:
        hub.store.close()
