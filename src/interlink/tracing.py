"""Trace context on outgoing deliveries: a W3C ``traceparent`` on every request and message,
and a span per attempt through OpenTelemetry.

The engine takes the process's tracer once (:func:`tracer`): the global OpenTelemetry
provider's, set by whoever configures the SDK (``opentelemetry-instrument``, or a provider set
at start, exporting by OTLP if so configured). Each attempt is then a span ``deliver <flow>``,
and its context travels as ``traceparent``. With no SDK configured there is no span to record,
and the attempt still carries a fresh, unsampled ``traceparent`` (version 00, flags 00), so a
downstream's logs can be joined to ours by its ids.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
_PROPAGATOR = TraceContextTextMapPropagator()


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


@contextmanager
def attempt(
    tracer: trace.Tracer | None, flow: str, system: str, headers: MutableMapping[str, str]
) -> Iterator[trace.Span | None]:
    """One delivery attempt: its span (None without a tracer), its ``traceparent`` put in
    ``headers``. An exception leaving the block is recorded on the span and goes on."""
    if tracer is None:
        headers[TRACEPARENT] = unsampled()
        yield None
        return
    with tracer.start_as_current_span(
        f"deliver {flow}",
        kind=trace.SpanKind.PRODUCER,
        attributes={"delivery.flow": flow, "delivery.system": system},
    ) as span:
        _PROPAGATOR.inject(headers)
        if TRACEPARENT not in headers:  # a span not sampled and so not propagated
            headers[TRACEPARENT] = unsampled()
        yield span
