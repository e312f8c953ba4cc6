"""Trace context on deliveries: every attempt carries a W3C ``traceparent``; with an
OpenTelemetry SDK configured it is the attempt's own span, recorded and exported."""

from __future__ import annotations

import re

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from interlink.clock import FakeClock
from interlink.service import Hub
from tests.conftest import TREASURY_FLOW, header, pay, submit
from tests.receiver import Receiver

TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


def sampled(match: re.Match[str]) -> bool:
    return bool(int(match[3], 16) & 1)


def traceparents(receiver: Receiver) -> list[re.Match[str]]:
    found = []
    for request in receiver.requests:
        match = TRACEPARENT.fullmatch(header(request, "traceparent") or "")
        assert match is not None, request.headers
        found.append(match)
    return found


async def test_each_attempt_is_a_span_whose_context_the_downstream_receives(
    hub: Hub, treasury: Receiver, clock: FakeClock
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    hub.engine.dispatcher.tracer = provider.get_tracer("test")
    treasury.respond(503, times=1)
    [doc] = await submit(hub, pay("A1"))

    await hub.engine.drain()
    clock.advance(5)
    await hub.engine.drain()

    spans = [s for s in exporter.get_finished_spans() if s.name == f"deliver {TREASURY_FLOW}"]
    assert len(spans) == 2 == len(treasury.requests)
    for span, sent in zip(spans, traceparents(treasury), strict=True):
        context = span.get_span_context()
        assert context is not None
        assert (sent[1], sent[2]) == (f"{context.trace_id:032x}", f"{context.span_id:016x}")
        assert sampled(sent)  # the downstream may record its part of the trace
        assert span.kind == SpanKind.PRODUCER
        assert span.attributes is not None
        assert span.attributes["delivery.flow"] == TREASURY_FLOW
        assert span.attributes["delivery.system"] == "treasury"
    assert [s.attributes and s.attributes["delivery.status_code"] for s in spans] == [503, 200]
    assert treasury.keys() == [doc["id"], doc["id"]]


async def test_without_an_sdk_each_attempt_still_carries_a_traceparent_of_its_own(
    hub: Hub, treasury: Receiver
) -> None:
    assert hub.engine.dispatcher.tracer is None  # no provider configured in the tests
    await submit(hub, pay("A1"), pay("A2"))

    await hub.engine.drain()

    sent = traceparents(treasury)
    assert len(sent) == 2
    assert not any(sampled(m) for m in sent)  # nobody records it
    assert len({m[1] for m in sent}) == 2  # a trace each, not one shared by accident
