"""`interlink reconcile` as a process: a real export against real deliveries, then the
re-push of what is missing downstream."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from interlink.clock import FakeClock
from interlink.service import Hub
from tests.acceptance.conftest import run_cli, run_cli_async
from tests.conftest import TREASURY_FLOW, pay, submit
from tests.receiver import Receiver

TOPOLOGY = """\
timezone: Asia/Shanghai
database: sqlite:///hub.db
systems:
  trading:
    token_env: TEST_TRADING_TOKEN
  treasury:
    url: {treasury}
    timeout: 2s
  finance:
    url: {finance}
    timeout: 2s
documents:
  payment_order:
    key: order_no
    amount: amount
    scenarios:
      - {{name: payment, direction: forward, when: {{kind: pay}}}}
      - {{name: refund, direction: reverse, when: {{kind: refund}}}}
flows:
  trading-treasury:
    from: trading
    to: treasury
    document: payment_order
    path: /payments
    ordered: true
    reconcile:
      map: {{key: 单号, amount: 金额, status: 状态, date: 记账时间}}
      status_map: {{payment: PAID, refund: REFUNDED}}
      tolerance: "0.01"
"""

EXPORT = """\
单号,金额,状态,记账时间
A1,10.00,PAID,2026-01-05 10:01:00
A3,31.00,PAID,2026-01-05 10:01:00
A4,5.00,PAID,2026-01-05 10:01:00
A5,"50.00",PAID,2026-01-05 10:01:00
A5,50.00,PAID,2026-01-05 10:01:00
A6,60.00,PAID,2026-01-06 00:00:05
X9,7.00,PAID,2026-01-05 11:00:00
"""


async def test_reconcile_a_day_then_repush_the_missing(
    make_hub: Callable[[str], Hub], treasury: Receiver, clock: FakeClock, tmp_path: Path
) -> None:
    hub = make_hub(TOPOLOGY)
    docs = await submit(
        hub,
        pay("A1", "10.00"),
        pay("A2", "20.00"),
        pay("A3", "30.00"),
        pay("A4", "5.00", kind="refund"),
        pay("A5", "50.00"),
    )
    await hub.engine.drain()
    # A6 arrives just before midnight in Shanghai and is delivered just after it.
    clock.set(datetime(2026, 1, 5, 15, 59, 50, tzinfo=UTC))
    await submit(hub, pay("A6", "60.00"))
    clock.advance(20)
    await hub.engine.drain()
    assert len(treasury.requests) == 6
    (tmp_path / "export.csv").write_text(EXPORT, encoding="gb18030")

    args = ("reconcile", TREASURY_FLOW, "--file", "export.csv", "--date", "2026-01-05")
    first = await run_cli_async(*args, "--json", cwd=tmp_path)
    assert first.code == 1, first.err
    report = first.json()
    assert report["categories"] == {
        "missing": 1,
        "extra": 1,
        "amount_mismatch": 1,
        "status_mismatch": 1,
        "duplicate": 1,
        "timing": 1,
    }
    assert report["totals"]["ours"] == {"count": 6, "amount": "175.00"}
    assert report["totals"]["theirs"] == {"count": 6, "amount": "153.00"}
    assert report["totals"]["difference"] == {"count": 0, "amount": "-22.00"}
    assert report["complete"] is True and report["encoding"] == "gb18030"
    by_category = {item["category"]: item for item in report["items"]}
    assert by_category["missing"]["key"] == "A2"
    assert by_category["extra"]["key"] == "X9" and by_category["extra"]["line"] == 8
    assert by_category["amount_mismatch"]["key"] == "A3"
    assert by_category["status_mismatch"]["theirs_status"] == "PAID"
    assert by_category["duplicate"]["line"] == 6
    assert by_category["timing"]["key"] == "A6"

    dry = await run_cli_async(*args, "--repush-missing", "--dry-run", "--json", cwd=tmp_path)
    assert dry.code == 1, dry.err
    assert dry.json()["repush"]["repushed"] == 1 and dry.json()["repush"]["dry_run"] is True
    clock.set(datetime.now(UTC) + timedelta(minutes=5))  # the CLI re-queues at the real now
    await hub.engine.drain()
    assert len(treasury.requests) == 6  # a dry run sends nothing

    real = await run_cli_async(*args, "--repush-missing", cwd=tmp_path)
    assert real.code == 1, real.err
    assert "re-pushed 1 of 1 missing" in real.out
    clock.set(datetime.now(UTC) + timedelta(minutes=5))
    await hub.engine.drain()
    a2 = docs[1]["id"]
    assert treasury.keys()[-1] == a2 and treasury.keys().count(a2) == 2
    [audit] = [a for a in hub.audit() if a["action"] == "reconcile_repush"]
    assert audit["detail"]["repushed"] == 1

    # The stored runs are listed by the API's service, newest first, all complete.
    runs = hub.capabilities["reconcile"].runs(TREASURY_FLOW)
    assert len(runs) == 3 and all(r["complete"] for r in runs)


CLEAN = """\
timezone: Asia/Shanghai
database: sqlite:///hub.db
systems:
  trading: {}
  treasury: {url: "http://127.0.0.1:9"}
documents:
  payment_order: {key: order_no, amount: amount}
flows:
  trading-treasury: {from: trading, to: treasury, document: payment_order, path: /p}
"""


@pytest.mark.parametrize(
    ("name", "content", "extra", "message"),
    [
        ("empty.csv", b"", (), "empty"),
        ("cols.csv", b"no,amt\nA1,1\n", (), "its columns are: 'no', 'amt'"),
        ("amount.csv", b"order_no,amount\nA1,1\nA2,1.2.3\n", (), "line 3: malformed amount"),
        ("header.csv", b"order_no,amount\nA1,1\norder_no,amount\n", (), "line 3: the header"),
        ("gbk.csv", "order_no,amount\n甲,1\n".encode("gbk"), ("--encoding", "utf-8"), "line 2"),
    ],
)
def test_bad_input_exits_2_with_the_line(
    tmp_path: Path, name: str, content: bytes, extra: tuple[str, ...], message: str
) -> None:
    (tmp_path / "interlink.yaml").write_text(CLEAN)
    (tmp_path / name).write_bytes(content)
    result = run_cli(
        "reconcile",
        TREASURY_FLOW,
        "--file",
        name,
        "--map",
        "key=order_no,amount=amount",
        *extra,
        cwd=tmp_path,
    )
    assert result.code == 2, (result.out, result.err)
    assert message in result.out + result.err
    assert "Traceback" not in result.err
    assert "no differences" not in result.out  # a partial comparison is never clean
