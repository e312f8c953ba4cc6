"""The upstream's trace continues: a ``traceparent`` submitted with documents is stored with
them, intake is a span under it, and every attempt a span under intake's, whose context the
downstream receives; without an SDK the upstream's header is forwarded as it came."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import orjson
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import select

from interlink.clock import FakeClock
from interlink.config import Topology
from interlink.features.file_exchange.service import file_exchange
from interlink.features.registry import FEATURES
from interlink.intake import Item
from interlink.service import Hub
from interlink.store.schema import documents
from tests.conftest import FINANCE_FLOW, TREASURY_FLOW, Api, header, pay
from tests.receiver import Receiver

DOCS = "/api/v1/documents"
UPSTREAM_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
UPSTREAM_SPAN = "00f067aa0ba902b7"
UPSTREAM = f"00-{UPSTREAM_TRACE}-{UPSTREAM_SPAN}-01"
TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


def traced(hub: Hub) -> InMemorySpanExporter:
    """The hub's intake and engine recording into memory, as a configured SDK would."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    hub.intake.tracer = hub.engine.dispatcher.tracer = provider.get_tracer("test")
    return exporter


def ids(span: ReadableSpan) -> tuple[str, str]:
    context = span.get_span_context()
    assert context is not None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def parent_of(span: ReadableSpan) -> str | None:
    return None if span.parent is None else f"{span.parent.span_id:016x}"


def stored(hub: Hub) -> dict[str, str | None]:
    """document id → the traceparent stored with it."""
    with hub.store.reading() as conn:
        rows = conn.execute(select(documents.c.id, documents.c.traceparent))
        return {row.id: row.traceparent for row in rows}


async def test_the_upstreams_trace_runs_through_intake_to_each_attempt(
    hub: Hub, api: Api, treasury: Receiver, finance: Receiver, clock: FakeClock
) -> None:
    exporter = traced(hub)
    treasury.respond(503, times=2)
    lines = b"\n".join(orjson.dumps({"type": "payment_order", "payload": pay(n)}) for n in "AB")
    status, _, _ = await api.request(
        "POST",
        DOCS,
        data=lines,
        headers={"Content-Type": "application/x-ndjson", "traceparent": UPSTREAM},
    )
    assert status == 202

    await hub.engine.drain()
    clock.advance(5)
    await hub.engine.drain()

    spans = exporter.get_finished_spans()
    intakes = [s for s in spans if s.name == "intake payment_order"]
    assert len(intakes) == 2  # one per document, the request's traceparent for both
    for span in intakes:
        assert ids(span)[0] == UPSTREAM_TRACE and parent_of(span) == UPSTREAM_SPAN
        assert span.kind == SpanKind.SERVER
        assert span.attributes is not None and span.attributes["document.source"] == "trading"
    by_document = {s.attributes["document.id"]: ids(s)[1] for s in intakes if s.attributes}
    # What is stored with each document is its intake span's context: its deliveries' parent.
    assert stored(hub) == {
        doc: f"00-{UPSTREAM_TRACE}-{span_id}-01" for doc, span_id in by_document.items()
    }
    delivers = [s for s in spans if s.name.startswith("deliver ")]
    # Treasury: two first attempts refused, then both again; finance: once each.
    assert (
        sorted(s.name for s in delivers)
        == [f"deliver {FINANCE_FLOW}"] * 2 + [f"deliver {TREASURY_FLOW}"] * 4
    )
    for span in delivers:
        assert ids(span)[0] == UPSTREAM_TRACE
        assert parent_of(span) in by_document.values()
    sent = {ids(s)[1]: parent_of(s) for s in delivers}
    for receiver in (treasury, finance):
        for request in receiver.requests:
            found = TRACEPARENT.fullmatch(header(request, "traceparent") or "")
            assert found is not None
            assert found[1] == UPSTREAM_TRACE  # the downstream joins the upstream's trace
            assert sent[found[2]] == by_document[header(request, "webhook-id")]
    assert len(treasury.requests) == 4 and len(finance.requests) == 2


async def test_without_an_sdk_the_upstreams_traceparent_goes_on_as_it_came(
    hub: Hub, api: Api, finance: Receiver
) -> None:
    assert hub.intake.tracer is None and hub.engine.dispatcher.tracer is None
    status, _, _ = await api.request(
        "POST",
        DOCS,
        json={"type": "payment_order", "payload": pay("A")},
        headers={"traceparent": UPSTREAM},
    )
    assert status == 202
    status, _, _ = await api.request(
        "POST", DOCS, json={"type": "payment_order", "payload": pay("B")}
    )
    assert status == 202
    assert sorted(stored(hub).values(), key=str) == [UPSTREAM, None]

    await hub.engine.drain()

    sent = {header(r, "traceparent") for r in finance.requests}
    assert UPSTREAM in sent and len(sent) == 2
    [fresh] = sent - {UPSTREAM}
    found = TRACEPARENT.fullmatch(fresh or "")
    assert found is not None and found[1] != UPSTREAM_TRACE and found[3] == "00"


async def test_an_invalid_traceparent_is_ignored_not_refused(
    hub: Hub, api: Api, finance: Receiver
) -> None:
    exporter = traced(hub)
    bad = UPSTREAM.upper().replace("0X", "0x")  # uppercase hex: not version 00's form
    status, body, _ = await api.request(
        "POST",
        DOCS,
        json=[{"type": "payment_order", "payload": pay("A")}],
        headers={"traceparent": bad},
    )
    assert status == 202, body

    await hub.engine.drain()

    [intake] = [s for s in exporter.get_finished_spans() if s.name.startswith("intake")]
    assert parent_of(intake) is None and ids(intake)[0] != UPSTREAM_TRACE  # a trace of its own
    [row] = stored(hub).values()
    assert row is not None and row[3:35] == ids(intake)[0]
    [request] = finance.requests
    assert (header(request, "traceparent") or "")[3:35] == ids(intake)[0]


async def test_a_refused_document_ends_its_intake_span_as_an_error(hub: Hub, api: Api) -> None:
    exporter = traced(hub)
    status, _, _ = await api.request(
        "POST",
        DOCS,
        json={"type": "payment_order", "payload": {"amount": "1"}},
        headers={"traceparent": UPSTREAM},
    )
    assert status == 422
    [span] = exporter.get_finished_spans()
    assert span.name == "intake payment_order" and parent_of(span) == UPSTREAM_SPAN
    assert span.status.status_code == StatusCode.ERROR
    assert stored(hub) == {}


FILE_TOPOLOGY = """\
timezone: Asia/Shanghai
database: sqlite:///hub.db
systems:
  trading:
    token_env: TEST_TRADING_TOKEN
  bank:
    transport: file
    file_exchange:
      location: out
      name: "PAY_{seq:03d}.csv"
      max_lines: 2
      columns:
        - {name: order_no, field: order_no}
        - {name: amount, field: amount}
documents:
  payment_order:
    key: order_no
flows:
  trading-bank:
    from: trading
    to: bank
    document: payment_order
"""


async def test_a_batch_file_is_a_span_linking_its_documents_traces(
    write_topology: Callable[[str], Topology], tmp_path: Path, clock: FakeClock, database: str
) -> None:
    (tmp_path / "out").mkdir()
    hub = Hub(write_topology(FILE_TOPOLOGY), clock=clock, features=FEATURES)
    try:
        exporter = traced(hub)
        service = file_exchange(hub)
        service.tracer = hub.intake.tracer
        trading = hub.topology.systems["trading"]
        await hub.intake.submit(trading, [Item("payment_order", pay("A"))], UPSTREAM)
        await hub.intake.submit(trading, [Item("payment_order", pay("B"))])

        await service.tick()  # two lines wait: max_lines cuts the file

        assert [p.name for p in (tmp_path / "out").iterdir()] == ["PAY_001.csv"]
        spans = exporter.get_finished_spans()
        [file_span] = [s for s in spans if s.name == "file trading-bank"]
        intakes = {ids(s) for s in spans if s.name == "intake payment_order"}
        assert len(intakes) == 2
        assert ids(file_span)[0] not in {t for t, _ in intakes}  # a trace of its own
        linked = {
            (f"{link.context.trace_id:032x}", f"{link.context.span_id:016x}")
            for link in file_span.links
        }
        assert linked == intakes  # each document's trace, the upstream's for A
        assert UPSTREAM_TRACE in {trace_id for trace_id, _ in linked}
        assert file_span.parent is None and file_span.attributes is not None
        assert file_span.attributes["file.name"] == "PAY_001.csv"
    finally:
        await hub.close()
