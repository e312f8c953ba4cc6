"""Batch and result files as bytes, the cut and the result deadline, and the topology's
file_exchange block: pure, no network, no store."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from interlink.config import FileExchangeSettings, loads
from interlink.errors import ConfigError
from interlink.features.file_exchange.fileformat import Item, parse_results, render
from interlink.features.file_exchange.schedule import latest_cut, result_due

SHANGHAI = ZoneInfo("Asia/Shanghai")


def settings(**extra: object) -> FileExchangeSettings:
    base: dict[str, object] = {
        "location": "/tmp/out",
        "encoding": "gbk",
        "columns": [
            {"name": "order_no", "field": "@key", "width": 6},
            {"name": "payee", "field": "payee.name", "width": 8},
            {"name": "amount", "field": "amount", "width": 8, "align": "right"},
        ],
        "results": {"key": "order_no", "status": "st", "accepted": ["00"], "refused": ["01"]},
    }
    return FileExchangeSettings.model_validate({**base, **extra})


def test_fixed_width_counts_bytes_of_the_encoding_and_refuses_only_what_cannot_travel() -> None:
    items = [
        Item(1, "d1", "A1", 1, {"payee": {"name": "张三"}, "amount": "10.00"}),
        Item(2, "d2", "A2", 1, {"payee": {"name": "张三丰先生"}, "amount": "1"}),  # 10 bytes
        Item(3, "d3", "A3", 1, {"payee": {"name": "€"}, "amount": "1"}),  # no GBK euro
        Item(4, "d4", "A4", 1, {"payee": {"name": "a\nb"}, "amount": "1"}),
    ]
    batch = render(settings(format="fixed", line_end="lf", results=None, match="order_no"), items)
    # 6 + 8 + 8 bytes: 张三 is four bytes in GBK, so four spaces pad it, not six.
    assert batch.content == ("A1    " + "张三    " + "   10.00\n").encode("gbk")
    assert batch.lines == [(1, 1, "A1")]
    assert set(batch.refused) == {2, 3, 4}
    assert "10 bytes" in batch.refused[2] and "gbk" in batch.refused[3]
    assert "line break" in batch.refused[4]


def test_results_are_judged_by_status_and_the_rest_are_problems() -> None:
    content = "order_no,st,msg\r\nA1,00,\r\nA2,01,余额不足\r\nA3,99,?\r\n,00,\r\n".encode("gbk")
    found = parse_results(settings(results={
        "key": "order_no", "status": "st", "accepted": ["00"], "refused": ["01"],
        "message": "msg",
    }), content)  # fmt: skip
    assert [(r.key, r.verdict, r.message) for r in found.lines] == [
        ("A1", "accepted", ""),
        ("A2", "refused", "余额不足"),
    ]
    assert [(p["line"], p["problem"]) for p in found.problems] == [
        (4, "unknown status '99'"),
        (5, "no key"),
    ]


def test_the_cut_and_the_deadline_are_local_times() -> None:
    at = datetime(2026, 1, 5, 13, 59, tzinfo=UTC)  # 21:59 in Shanghai
    assert latest_cut(at, ["22:00"], SHANGHAI) == datetime(2026, 1, 4, 22, 0, tzinfo=SHANGHAI)
    assert latest_cut(at.replace(minute=0, hour=14), ["22:00"], SHANGHAI) == datetime(
        2026, 1, 5, 22, 0, tzinfo=SHANGHAI
    )
    sent = datetime(2026, 1, 5, 14, 0, tzinfo=UTC)
    assert result_due(sent, "10:00", SHANGHAI) == datetime(2026, 1, 6, 10, 0, tzinfo=SHANGHAI)
    assert result_due(sent, "12h", SHANGHAI) == datetime(2026, 1, 6, 2, 0, tzinfo=UTC)


TOPOLOGY = """\
systems:
  trading: {{}}
  bank:
    transport: file
{block}
documents:
  order: {{key: order_no}}
flows:
  orders: {{from: trading, to: bank, document: order}}
"""


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        ("", "t.yaml:4: systems.bank.transport: transport: file needs a file_exchange block"),
        (
            "    file_exchange:\n      location: sftp://h/up\n      columns: [{name: a, field: a}]",
            "t.yaml:5: systems.bank.file_exchange: an sftp:// location needs known_hosts",
        ),
        (
            "    file_exchange:\n      location: out\n      name: PAY_{date:%Y}.csv\n"
            "      columns: [{name: a, field: a}]",
            "t.yaml:7: systems.bank.file_exchange.name: 'PAY_{date:%Y}.csv': a file name "
            "pattern needs {seq}",
        ),
        (
            "    file_exchange:\n      location: out\n      encoding: klingon\n"
            "      columns: [{name: a, field: a}]",
            "t.yaml:7: systems.bank.file_exchange.encoding: unknown text encoding 'klingon'",
        ),
    ],
)
def test_the_topology_says_what_is_wrong_with_file_and_line(block: str, expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        loads(textwrap.dedent(TOPOLOGY.format(block=block)), "t.yaml")
    assert any(p.startswith(expected) for p in raised.value.problems), raised.value.problems


def test_a_file_system_needs_no_url() -> None:
    text = TOPOLOGY.format(
        block="    file_exchange:\n      location: out\n      columns: [{name: a, field: a}]"
    )
    topology = loads(text, "/tmp/t.yaml")
    assert topology.systems["bank"].file_exchange is not None
    assert topology.systems["bank"].file_exchange.location == "/tmp/out"
