"""Drills whose documents come from an outbox: the drill makes its own table in a scratch
MariaDB or PostgreSQL database, writes its documents there as rows at its rate, and the
topology's outbox source takes them to a mapped flow while the receiver goes down and hangs.
The report proves rows = documents = bookings, and that every booked body is the map's."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from interlink.config import Topology
from interlink.errors import ConfigError, InputError
from interlink.features.drills import report as render
from interlink.features.drills import spec as drill_spec
from interlink.features.drills.expectations import (
    FAILED,
    PASSED,
    FlowPath,
    Unmappable,
    mapped_bodies,
    outbox_taken,
)
from interlink.features.drills.run import rehearse
from interlink.features.drills.sandbox import Received
from interlink.features.registry import FEATURES
from tests.sources_upstream import Upstream, open_upstream

TOPOLOGY = """\
timezone: Asia/Shanghai
database: sqlite:///hub.db
code_tables:
  payment_kind: {pay: "01", refund: "02"}
systems:
  trading:
    sources:
      trading-outbox:
        kind: outbox
        url_env: TRADING_DB_URL_NOT_USED_BY_DRILLS
        table: outbox
        {source_extra}
  treasury:
    url: http://127.0.0.1:9
    timeout: 2s
documents:
  payment_order:
    key: order_no
    scenarios:
      - {name: payment, direction: forward, when: {kind: pay}}
      - {name: refund, direction: reverse, when: {kind: refund}}
flows:
  trading-treasury:
    from: trading
    to: treasury
    document: payment_order
    path: /payments
    ordered: true
    map:
      fields:
        付款单号: order_no
        金额: {path: amount, format: fen}
        付款类型: {path: kind, code: payment_kind}
        币种: {const: CNY}
"""

DRILL = """\
name: outbox to a mapped flow, treasury down then hanging
flows: [trading-treasury]
rate: 60/s
order: interleave
outbox: {{source: trading-outbox, database_env: DRILL_SCRATCH_DB, interval: 100ms{feed}}}
documents:
  - {{scenario: payment, count: 10, payload: {{order_no: "P{{n}}", kind: pay, amount: "{{n}}.2"}}}}
  - {{scenario: refund, count: 10, payload: {{order_no: "P{{n}}", kind: refund, amount: "{{n}}"}}}}
faults:
  treasury:
    - {{fault: down, at: 0s, for: 0.6s}}
    - {{fault: timeout, at: 0.6s, for: 0.4s}}
overrides:
  engine: {{circuit_threshold: 2, probe_interval: 150ms, probe_max: 300ms}}
  flows:
    trading-treasury: {{retry: [100ms, 200ms], give_up_after: 30s}}
  systems:
    treasury: {{timeout: 250ms}}
time_limit: 10s
expect:
  delivered_within: 6s
  max_duplicates: 0
  order_kept: true
  mapped: true
"""


@pytest.fixture(params=["mysql", "postgresql"])
def scratch(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Upstream]:
    for upstream in open_upstream(request.param):  # skips (or fails under CI) when down
        monkeypatch.setenv("DRILL_SCRATCH_DB", upstream.url)
        yield upstream


def make(tmp_path: Path, write_topology: Callable[[str], Topology], source_extra: str, feed: str):
    topology = write_topology(TOPOLOGY.replace("{source_extra}", source_extra))
    path = tmp_path / "outbox.drill.yaml"
    path.write_text(DRILL.format(feed=feed))
    return drill_spec.load(path), topology


def drill_tables(upstream: Upstream) -> set[str]:
    return {t for t in sa.inspect(upstream.engine).get_table_names() if "interlink_drill_" in t}


async def test_an_outbox_drill_delivers_every_row_once_in_the_downstreams_shape(
    scratch: Upstream, tmp_path: Path, write_topology: Callable[[str], Topology]
) -> None:
    # MariaDB with the id cursor and mark_taken; PostgreSQL with the (updated_at, id) cursor.
    if scratch.kind == "mysql":
        extra, feed = "mark_taken: taken_at", ", batch: 7"
    else:
        extra = "cursor: updated_at\n        columns: {updated_at: updated_at}"
        feed = ", settle: 150ms"
    spec, topology = make(tmp_path, write_topology, extra, feed)
    before = drill_tables(scratch)
    report = await rehearse(spec, topology, features=FEATURES)
    assert report["passed"], report["expectations"]
    outbox = next(c for c in report["expectations"] if "outbox" in c["name"])
    assert outbox["evidence"].startswith("20 rows → 20 documents → 20 on trading-treasury")
    mapped = next(c for c in report["expectations"] if c["name"].startswith("bodies in"))
    assert mapped["evidence"] == "20 of 20 booked bodies are the map's output"
    assert report["outbox"]["rows"] == 20 and report["outbox"]["documents"] == 20
    assert report["outbox"]["marked_taken"] == (20 if scratch.kind == "mysql" else None)
    assert report["documents"]["submitted"] == 20 and report["documents"]["accepted"] == 20
    assert report["sandboxes"]["treasury"]["booked"] == 20
    assert "unavailable" in report["timeline"]["outcomes"]
    assert drill_tables(scratch) == before  # the drill's table is dropped
    assert "outbox: 20 rows written to the drill's table interlink_drill_" in render.markdown(
        report
    )
    assert "20 taken by source trading-outbox" in render.html(report)


async def test_an_outbox_drill_needs_its_scratch_database(
    tmp_path: Path, write_topology: Callable[[str], Topology], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DRILL_SCRATCH_DB", raising=False)
    spec, topology = make(tmp_path, write_topology, "", "")
    with pytest.raises(InputError, match="DRILL_SCRATCH_DB"):
        await rehearse(spec, topology, features=FEATURES)


def test_an_outbox_drill_names_a_wrong_source_by_line(
    tmp_path: Path, write_topology: Callable[[str], Topology]
) -> None:
    topology = write_topology(TOPOLOGY.replace("{source_extra}", ""))
    path = tmp_path / "bad.drill.yaml"
    path.write_text(
        DRILL.format(feed="")
        .replace("source: trading-outbox", "source: nowhere")
        .replace("mapped: true", "mapped: [nope]")
    )
    with pytest.raises(ConfigError) as caught:
        drill_spec.check_against(drill_spec.load(path), topology)
    text = "\n".join(caught.value.problems)
    assert f"{path}:5: outbox.source: unknown source 'nowhere' (sources: trading-outbox)" in text
    assert "'nope' is not one of the drill's flows" in text


def _received(document_id: str, payload: object, booked: bool = True) -> Received:
    return Received(
        0.1, "treasury", "/payments", document_id, "PO-1", 1, "", payload, "up", 200, booked
    )


def test_a_body_that_is_not_the_maps_output_fails_the_mapped_expectation() -> None:
    drill = drill_spec.Drill.model_validate(
        {"name": "x", "flows": ["f"], "documents": [{"type": "t", "payload": {}}]}
    )
    flows = [FlowPath("f", "treasury", "/payments")]
    want = {"付款单号": "PO-1", "金额": 125}
    expected = {("f", "d1"): want, ("f", "d2"): Unmappable("no code for 'x'")}
    good = mapped_bodies(drill, flows, [_received("d1", dict(want))], expected, [])
    assert good.status == PASSED
    bad = mapped_bodies(drill, flows, [_received("d1", {**want, "金额": "1.25"})], expected, [])
    assert bad.status == FAILED and '$.金额 is "1.25", the map makes 125' in bad.details[0]
    assert mapped_bodies(drill, flows, [], expected, []).status == FAILED  # nothing shows it


def test_a_row_that_became_no_document_or_two_fails_the_outbox_expectation() -> None:
    drill = drill_spec.Drill.model_validate(
        {"name": "x", "flows": ["f"], "documents": [{"type": "t", "payload": {}}]}
    )
    docs = [
        {"id": "d1", "identity": "key:src#1"},
        {"id": "d3", "identity": "key:src#3@2026-11-30T10:00:00"},
        {"id": "d3b", "identity": "key:src#3@2026-11-30T10:00:01"},
    ]
    deliveries = [
        {
            "document_id": d,
            "system": "treasury",
            "flow": "f",
            "key": d,
            "revision": 1,
            "status": "delivered",
            "reason": None,
        }
        for d in ("d1", "d3", "d3b")
    ]
    received = [_received("d1", {}), _received("d3", {}), _received("d3", {})]
    check = outbox_taken(
        drill, "src", [(1, "a"), (2, "b"), (3, "c")], docs, [], deliveries, received
    )
    assert check.status == FAILED
    text = " ".join(check.details)
    assert "row 2 (b)" in text and "row 3: 2 documents" in text
    assert "d3 r1: booked 2 times" in text and "d3b r1: booked 0 times" in text


async def test_a_row_intake_refuses_fails_the_outbox_expectation_and_is_listed(
    tmp_path: Path, write_topology: Callable[[str], Topology], monkeypatch: pytest.MonkeyPatch
) -> None:
    for upstream in open_upstream("postgresql"):
        monkeypatch.setenv("DRILL_SCRATCH_DB", upstream.url)
    topology = write_topology(TOPOLOGY.replace("{source_extra}", ""))
    path = tmp_path / "refused.drill.yaml"
    path.write_text(
        "name: a row without its key\nflows: [trading-treasury]\nrate: 100/s\n"
        "outbox: {source: trading-outbox, database_env: DRILL_SCRATCH_DB, interval: 50ms}\n"
        "documents:\n"
        '  - {scenario: payment, count: 3, payload: {order_no: "P{n}", kind: pay, amount: "1"}}\n'
        '  - {scenario: payment, payload: {kind: pay, amount: "2"}}\n'
        "time_limit: 5s\n"
    )
    report = await rehearse(drill_spec.load(path), topology, features=FEATURES)
    assert not report["passed"]
    outbox = next(c for c in report["expectations"] if "outbox" in c["name"])
    assert outbox["status"] == "failed"
    assert outbox["evidence"].startswith("4 rows → 3 documents → 3 on trading-treasury")
    [refused] = report["documents"]["refused"]
    assert refused["origin"].endswith("(documents.1 #1)")
