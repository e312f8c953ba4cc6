"""Outbox sources on real MariaDB and PostgreSQL upstreams: rows enter intake as API
submissions do, the cursor moves in the transaction that stores them (a SIGKILL anywhere
loses and repeats nothing), and the known gap of an id cursor under out-of-order commits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY

from interlink.clock import FakeClock
from interlink.config import Topology
from interlink.features.registry import FEATURES
from interlink.features.sources.service import FAULT_ENV, sources
from interlink.intake import Item
from interlink.service import Hub
from interlink.store.schema import documents
from tests.sources_upstream import Upstream, open_upstream

TOPOLOGY = """\
timezone: Asia/Shanghai
database: sqlite:///hub.db
systems:
  trading:
    token_env: TEST_TRADING_TOKEN
    sources:
      pay-outbox:
        kind: outbox
        url_env: TEST_SOURCE_DB
        table: {table}
{extra}
  treasury:
    url: http://127.0.0.1:9
documents:
  payment_order:
    key: order_no
    contract: contract.json
    scenarios:
      - {{name: payment, direction: forward, when: {{kind: pay}}}}
      - {{name: refund, direction: reverse, likelihood: low, when: {{kind: refund}}}}
flows:
  trading-treasury:
    from: trading
    to: treasury
    document: payment_order
    path: /payments
"""
CONTRACT = {
    "type": "object",
    "required": ["order_no", "amount", "kind"],
    "properties": {
        "order_no": {"type": "string"},
        "amount": {"type": "string", "pattern": "^[0-9]+\\.[0-9]{2}$"},
        "kind": {"enum": ["pay", "refund"]},
    },
}


@pytest.fixture(params=["mysql", "postgresql"])
def upstream(request: pytest.FixtureRequest) -> Iterator[Upstream]:
    yield from open_upstream(request.param)


# Each upstream once on each store, without the whole cross product (the suite's time).
ACROSS = pytest.mark.parametrize(
    ("upstream", "database"),
    [("mysql", "sqlite"), ("postgresql", "postgresql")],
    indirect=True,
)
CROSSED = pytest.mark.parametrize(
    ("upstream", "database"),
    [("mysql", "postgresql"), ("postgresql", "sqlite")],
    indirect=True,
)


@pytest.fixture
def mysql() -> Iterator[Upstream]:
    yield from open_upstream("mysql")


@pytest.fixture
def make(
    write_topology: Callable[[str], Topology],
    tmp_path: Path,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., Hub]]:
    made: list[Hub] = []
    (tmp_path / "contract.json").write_text(json.dumps(CONTRACT))

    def build(up: Upstream, edit: Callable[[str], str] = str, **settings: object) -> Hub:
        monkeypatch.setenv("TEST_SOURCE_DB", up.url)
        extra = "".join(f"        {k}: {json.dumps(v)}\n" for k, v in settings.items())
        text = TOPOLOGY.format(table=up.table, extra=extra.rstrip("\n"))
        topology = write_topology(edit(text))
        hub = Hub(topology, clock=clock, features=FEATURES)
        made.append(hub)
        return hub

    yield build
    for hub in made:
        sources(hub).close()
        hub.store.close()


def pay(order_no: str, amount: str = "10.00", kind: str = "pay") -> str:
    return json.dumps({"order_no": order_no, "amount": amount, "kind": kind})


def stored(hub: Hub) -> list[tuple[str, int, str | None, str]]:
    query = sa.select(
        documents.c.key, documents.c.revision, documents.c.scenario, documents.c.source
    ).order_by(documents.c.key, documents.c.revision)
    return [tuple(r) for r in hub.store.read_sync(lambda c: list(c.execute(query)))]  # type: ignore[misc]


def event_kinds(hub: Hub) -> list[str]:
    return [e["kind"] for e in hub.events()]


@CROSSED
def test_rows_enter_intake_as_submissions_and_the_cursor_follows(
    upstream: Upstream, make, database: str
):
    """On either store (``database``), from either upstream."""
    upstream.outbox()
    with upstream.engine.begin() as conn:
        upstream.insert(conn, "payment_order", pay("P1"))
        upstream.insert(conn, "payment_order", pay("P2", kind="refund"))
        upstream.insert(conn, "payment_order", pay("P1", amount="12.00"))  # a revision
        bad = upstream.insert(conn, "payment_order", pay("P3", amount="12"))  # contract
        unknown = upstream.insert(conn, "invoice", json.dumps({"no": "I1"}))
    hub = make(upstream)
    service = sources(hub)

    result = service.poll("pay-outbox")

    assert (result["read"], result["accepted"], result["refused"]) == (5, 3, 2)
    assert result["cursor"] == unknown and result["behind"] == 0
    assert stored(hub) == [
        ("P1", 1, "payment", "trading"),
        ("P1", 2, "payment", "trading"),
        ("P2", 1, "refund", "trading"),
    ]
    problems = service.problems("pay-outbox")
    assert sorted(p["ref"] for p in problems) == sorted([str(bad), str(unknown)])
    by_ref = {p["ref"]: p for p in problems}
    assert by_ref[str(bad)]["problems"][0]["path"] == "$.amount"
    assert "unknown document type 'invoice'" in by_ref[str(unknown)]["message"]
    assert "source_rows_refused" in event_kinds(hub)
    # Nothing new: nothing read, nothing stored twice.
    assert service.poll("pay-outbox")["read"] == 0
    # Identity by source: the same document over the API is the one the outbox brought.
    trading = hub.topology.systems["trading"]
    again = hub.intake.submit_sync(
        trading, [Item("payment_order", json.loads(pay("P2", kind="refund")))]
    )
    assert again[0]["duplicate"] is True  # type: ignore[index]
    with upstream.engine.begin() as conn:
        upstream.insert(conn, "payment_order", pay("P4"))
    assert service.poll("pay-outbox")["accepted"] == 1
    status = {s["name"]: s for s in service.status()}["pay-outbox"]
    assert (status["accepted"], status["refused"], status["problems"]) == (4, 2, 2)


def _poll_in_process(topology: Path, env: dict[str, str], fault: str) -> subprocess.Popen[str]:
    """``interlink sources poll`` in its own process, stopped dead at ``fault``."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "interlink.cli",
            "sources",
            "poll",
            "pay-outbox",
            "-c",
            str(topology),
        ],
        env={**env, FAULT_ENV: fault},
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )


def _kill_at(proc: subprocess.Popen[str], fault: str) -> None:
    assert proc.stderr is not None
    for line in proc.stderr:  # the process says where it stopped, then waits to be killed
        if line.strip() == f"sources-fault:{fault}":
            break
    else:
        proc.stderr.close()
        pytest.fail(f"the poller exited ({proc.wait()}) before reaching {fault}")
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL
    proc.stderr.close()


@ACROSS
def test_sigkill_mid_batch_neither_loses_nor_repeats_a_row(upstream: Upstream, make, database: str):
    """On either store (``database``), from either upstream."""
    upstream.outbox()
    with upstream.engine.begin() as conn:
        for i in range(50):
            upstream.insert(conn, "payment_order", pay(f"K{i:02d}"))
    hub = make(upstream, batch=20, mark_taken="taken_at")
    topology = hub.topology.path
    env = {**os.environ, "TEST_SOURCE_DB": upstream.url}
    hub.store.close()

    # Killed inside the transaction, after intake wrote the batch: it all rolls back.
    _kill_at(_poll_in_process(topology, env, "written"), "written")
    assert stored(hub) == []
    assert sources(hub).status()[0]["cursor"] is None

    # Killed after the commit, before the rows were marked taken: the batch is stored once
    # and the cursor is past it; the rows stay unmarked (marking is at least once, after).
    _kill_at(_poll_in_process(topology, env, "committed"), "committed")
    assert len(stored(hub)) == 20
    assert upstream.count("taken_at IS NULL") == 50

    # A fresh poller takes the rest: every row once.
    service = sources(hub)
    while service.poll("pay-outbox")["read"]:
        pass
    keys = [key for key, *_ in stored(hub)]
    assert keys == [f"K{i:02d}" for i in range(50)]
    assert upstream.count("taken_at IS NULL") == 20


def test_out_of_order_commits_id_cursor_gap_and_settled_updated_at(
    upstream: Upstream, make, clock: FakeClock
):
    """Two transactions take ids 1 and 2; 2 commits first. An id cursor polled between the
    commits moves past 1 for good. An (updated_at, id) cursor that only reads rows older
    than the settle delay waits until both have committed, and loses neither."""
    upstream.outbox()
    local = clock.now().astimezone(hub_zone()).replace(tzinfo=None)

    def race(poll: Callable[[], object], at_first: object, at_second: object) -> None:
        with upstream.engine.connect() as first, upstream.engine.connect() as second:
            first.begin()
            upstream.insert(first, "payment_order", pay("late"), at_first)  # lower id
            second.begin()
            upstream.insert(second, "payment_order", pay("early"), at_second)
            second.commit()
            poll()
            first.commit()

    by_id = make(upstream)
    race(lambda: sources(by_id).poll("pay-outbox"), local, local)
    sources(by_id).poll("pay-outbox")
    assert [k for k, *_ in stored(by_id)] == ["early"]  # "late" is behind the cursor: lost
    sources(by_id).close()
    by_id.store.close()

    upstream.exec(f"DELETE FROM {upstream.table}")
    (by_id.topology.path.parent / "hub.db").unlink()
    settled = make(upstream, cursor="updated_at", columns={"updated_at": "updated_at"}, settle="5s")
    service = sources(settled)
    race(lambda: service.poll("pay-outbox"), local, local + timedelta(milliseconds=1))
    assert stored(settled) == []  # nothing is read before it settles
    clock.advance(timedelta(seconds=6))
    result = service.poll("pay-outbox")
    assert result["read"] == 2
    assert sorted(k for k, *_ in stored(settled)) == ["early", "late"]


def hub_zone():
    from zoneinfo import ZoneInfo

    return ZoneInfo("Asia/Shanghai")


def test_pause_lag_alerts_and_gauges(mysql: Upstream, make, clock: FakeClock, monkeypatch):
    mysql.outbox()
    local = clock.now().astimezone(hub_zone()).replace(tzinfo=None)
    with mysql.engine.begin() as conn:
        for i in range(5):
            mysql.insert(conn, "payment_order", pay(f"L{i}"), local - timedelta(minutes=30))
    hub = make(mysql, batch=2, behind_rows=2, columns={"updated_at": "updated_at"})
    service = sources(hub)

    service.pause("pay-outbox", "ops", "upstream release")
    assert service.poll("pay-outbox") == {"source": "pay-outbox", "paused": True, "read": 0}
    assert [a["action"] for a in hub.audit("source:pay-outbox")] == ["source_pause"]
    service.resume("pay-outbox", "ops")

    first = service.poll("pay-outbox")
    assert (first["read"], first["behind"]) == (2, 3)
    status = service.status()[0]
    assert status["behind"] == 3 and status["oldest_unread_age"] == pytest.approx(1800)
    assert status["behind_since"] is not None
    service.poll("pay-outbox")  # still behind: no second alert
    assert event_kinds(hub).count("source_behind") == 1
    gauge = REGISTRY.get_sample_value("interlink_source_rows_behind", {"source": "pay-outbox"})
    assert gauge == 1
    service.poll("pay-outbox")
    assert service.status()[0]["behind_since"] is None

    # The upstream goes away: one alert, however many polls fail.
    sources(hub).close()
    monkeypatch.setenv("TEST_SOURCE_DB", "mysql+pymysql://root@127.0.0.1:1/test")
    for _ in range(2):
        assert "error" in service.poll("pay-outbox")
    assert event_kinds(hub).count("source_unreachable") == 1
    assert service.status()[0]["unreachable_since"] is not None
    assert REGISTRY.get_sample_value("interlink_source_up", {"source": "pay-outbox"}) == 0


def test_legacy_table_with_a_column_map(mysql: Upstream, make):
    """A table that is no outbox: every column is the payload, Chinese names included."""
    mysql.exec(
        f"CREATE TABLE {mysql.table} (pay_id BIGINT AUTO_INCREMENT PRIMARY KEY, "
        "`付款单号` VARCHAR(40), `金额` DECIMAL(12,2), `类型` VARCHAR(10))"
    )
    mysql.exec(
        f"INSERT INTO {mysql.table} (`付款单号`, `金额`, `类型`) VALUES "
        "('FK-001', 1234.50, 'pay'), ('FK-002', 8.00, 'refund')"
    )

    def edit(text: str) -> str:
        return text.replace("documents:\n", "documents:\n  付款单:\n    key: 付款单号\n").replace(
            "flows:\n",
            "flows:\n  trading-treasury-fk:\n    from: trading\n    to: treasury\n"
            "    document: 付款单\n    path: /fk\n",
        )

    hub = make(
        mysql, edit, document="付款单", columns={"id": "pay_id", "type": None, "payload": None}
    )
    result = sources(hub).poll("pay-outbox")
    assert result["accepted"] == 2
    doc = hub.documents("FK-001", "付款单")[0]
    assert doc.payload == {"pay_id": 1, "付款单号": "FK-001", "金额": "1234.50", "类型": "pay"}


async def test_the_background_loop_polls_beside_the_engine(mysql: Upstream, make):
    import asyncio

    mysql.outbox()
    with mysql.engine.begin() as conn:
        for i in range(7):
            mysql.insert(conn, "payment_order", pay(f"B{i}"))
    hub = make(mysql, batch=3, interval="1h")
    assert len(hub.hooks.background) >= 1
    stop = asyncio.Event()
    task = asyncio.create_task(sources(hub).loop(stop))
    # Full batches are followed at once; the loop then waits out its hour.
    for _ in range(500):
        if sources(hub).status()[0]["accepted"] == 7:
            break
        await asyncio.sleep(0.01)  # waiting for the loop's thread, not for a retry
    stop.set()
    await asyncio.wait_for(task, 10)
    assert len(stored(hub)) == 7


def test_two_pollers_never_both_take_a_batch(mysql: Upstream, make):
    """The cursor moves by compare-and-set: a poller that read the cursor before another
    moved it stores nothing of its batch."""
    from interlink.errors import Conflict

    mysql.outbox()
    with mysql.engine.begin() as conn:
        for i in range(3):
            mysql.insert(conn, "payment_order", pay(f"C{i}"))
    first = make(mysql)
    second = Hub(first.topology, clock=first.clock, features=FEATURES)
    try:
        slow = sources(first)
        system, settings = slow.source("pay-outbox")
        seen = slow._state("pay-outbox", system.name)  # read before the other poller ran
        assert sources(second).poll("pay-outbox")["accepted"] == 3
        with pytest.raises(Conflict):
            slow._poll_rows(system, settings, seen, settings.batch)
        assert [k for k, *_ in stored(first)] == ["C0", "C1", "C2"]
    finally:
        sources(second).close()
        second.store.close()
