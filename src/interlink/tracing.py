"""Trace context: a W3C ``traceparent`` on every outgoing request and message, continuing the
upstream's trace when it submitted one, and spans for intake and each attempt through
OpenTelemetry.

The hub takes the process's tracer once (:func:`tracer`): the global OpenTelemetry provider's,
set by whoever configures the SDK (``serve`` and ``worker`` set one exporting by OTLP when
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, see :func:`export_by_otlp`; or
``opentelemetry-instrument``). A submitted document's valid ``traceparent`` (:func:`upstream`)
is stored with it; with an SDK, intake is a span ``intake <type>`` under it, and the stored
context is that span's. Each attempt is then a span ``deliver <flow>`` under the stored context,
and its own context travels as ``traceparent``. With no SDK configured there is no span to
record: an attempt forwards the stored ``traceparent`` as it came (W3C: a participant that
records nothing passes it on), or, for a document that came without one, carries a fresh,
unsampled one (version 00, flags 00), so a downstream's logs can be joined to ours by its ids.
"""

from __future__ import annotations

import logging
import os
import random
import re
from collections.abc import Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger(__name__)

TRACEPARENT = "traceparent"
_PROPAGATOR = TraceContextTextMapPropagator()
# Version 00 exactly (W3C Trace Context): lowercase hex, trace id, parent id and flags.
_VALID = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


def tracer() -> trace.Tracer | None:
    """The configured SDK's tracer, or None when no provider is set (the API's no-op one)."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return None
    return provider.get_tracer("interlink.engine")


def unsampled() -> str:
    """A ``traceparent`` of a new trace nobody records. Its ids need to be unique, not secret
    (W3C Trace Context): the os's random source cost 8 µs a call on a busy machine, once per
    delivery, where this costs under one."""
    # The module's generator: Python seeds it again in a forked worker, so workers differ.
    trace_id = random.getrandbits(128) or 1  # all zeros is not a valid id
    span_id = random.getrandbits(64) or 1
    return f"00-{trace_id:032x}-{span_id:016x}-00"


def upstream(value: str | None) -> str | None:
    """``value`` if it is a valid version-00 ``traceparent``, else None: a malformed one, an
    all-zero id, another version, is ignored (never an error), as W3C asks of a receiver."""
    if value is None or len(value) != 55:
        return None
    found = _VALID.fullmatch(value)
    if found is None or found[1] == _ZERO_TRACE or found[2] == _ZERO_SPAN:
        return None
    return value


def _parent(traceparent: str | None) -> otel_context.Context | None:
    """The context whose span is ``traceparent``'s (remote); None without one (the current)."""
    if traceparent is None:
        return None
    return _PROPAGATOR.extract({TRACEPARENT: traceparent}, context=otel_context.Context())


def intake(
    tracer: trace.Tracer | None, type_: Any, source: str, traceparent: str | None
) -> tuple[trace.Span | None, str | None]:
    """One submitted document's intake span (None without a tracer), under the upstream's
    ``traceparent`` when it sent one, and the ``traceparent`` to store with the document:
    the span's context, or without a tracer the upstream's as it came."""
    if tracer is None:
        return None, traceparent
    name = f"intake {type_}" if isinstance(type_, str) and type_ else "intake"
    span = tracer.start_span(
        name,
        context=_parent(traceparent),  # None: under the current context (a request's span)
        kind=trace.SpanKind.SERVER,
        attributes={"document.source": source},
    )
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    return span, carrier.get(TRACEPARENT, traceparent)


def intake_done(spans: Sequence[trace.Span], results: Sequence[Any]) -> None:
    """End the intake spans with what became of each document: its id and revision, or why
    it was refused (``results`` holds a dict or an error per span, in order; no spans, no
    tracer: nothing to do)."""
    if not spans:
        return
    for span, result in zip(spans, results, strict=True):
        if isinstance(result, dict):
            span.set_attribute("document.id", result["id"])
            span.set_attribute("document.revision", result["revision"])
            span.set_attribute("document.duplicate", bool(result.get("duplicate")))
        else:
            span.set_status(trace.Status(trace.StatusCode.ERROR, str(result)))
        span.end()


@contextmanager
def attempt(
    tracer: trace.Tracer | None,
    flow: str,
    system: str,
    headers: MutableMapping[str, str],
    parent: str | None = None,
) -> Iterator[trace.Span | None]:
    """One delivery attempt: its span (None without a tracer) under ``parent`` (the
    document's stored ``traceparent``), its ``traceparent`` put in ``headers``. An exception
    leaving the block is recorded on the span and goes on."""
    if tracer is None:
        headers[TRACEPARENT] = parent or unsampled()
        yield None
        return
    with tracer.start_as_current_span(
        f"deliver {flow}",
        context=_parent(parent),
        kind=trace.SpanKind.PRODUCER,
        attributes={"delivery.flow": flow, "delivery.system": system},
    ) as span:
        _PROPAGATOR.inject(headers)
        if TRACEPARENT not in headers:  # a span not sampled and so not propagated
            headers[TRACEPARENT] = unsampled()
        yield span


@contextmanager
def batch_file(
    tracer: trace.Tracer | None,
    flow: str,
    system: str,
    name: str,
    traceparents: Sequence[str],
) -> Iterator[trace.Span | None]:
    """A batch file put at its downstream: a span ``file <flow>`` of its own (None without a
    tracer) linking to the stored contexts of the documents on its lines. A file has no place
    for a trace context per line (its format is the downstream's), so the links, not a
    parent, tie the documents' traces to it."""
    if tracer is None:
        yield None
        return
    links = []
    for value in traceparents:
        span_context = trace.get_current_span(_parent(value)).get_span_context()
        if span_context.is_valid:
            links.append(trace.Link(span_context))
    with tracer.start_as_current_span(
        f"file {flow}",
        context=otel_context.Context(),  # a trace of its own: many documents, many traces
        kind=trace.SpanKind.PRODUCER,
        links=links,
        attributes={"delivery.flow": flow, "delivery.system": system, "file.name": name},
    ) as span:
        yield span


def export_by_otlp() -> bool:
    """When ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set and no provider is yet, install the SDK's
    tracer provider exporting by OTLP over HTTP (the SDK reads the other ``OTEL_*`` variables:
    service name, headers, sampler). True if spans are exported from now on. Without the
    optional packages (the ``otel`` extra) it warns and runs on without export."""
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if not endpoint or tracer() is not None:
        return False
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        log.warning(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but spans cannot be exported: %s. Install "
            "Interlink's `otel` extra (opentelemetry-sdk, opentelemetry-exporter-otlp-proto-"
            "http); running without export, every delivery still carries a traceparent.",
            exc,
        )
        return False
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    log.info("tracing: spans exported by OTLP to %s", endpoint)
    return True
