"""An upstream's ``traceparent`` is taken only in W3C's version-00 form; OTLP export is set up
from the standard variable, and without the optional packages the hub runs on unexported."""

from __future__ import annotations

import logging
import sys

import pytest
from opentelemetry import trace

from interlink import tracing

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    "value",
    [VALID, VALID[:-2] + "00", VALID[:-2] + "ff"],
)
def test_a_valid_traceparent_is_kept_as_it_came(value: str) -> None:
    assert tracing.upstream(value) == value


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        VALID.upper(),  # hex is lowercase
        "01" + VALID[2:],  # a version we do not know the form of
        "ff" + VALID[2:],  # version ff is invalid
        f"00-{'0' * 32}-00f067aa0ba902b7-01",  # all-zero trace id
        f"00-4bf92f3577b34da6a3ce929d0e0e4736-{'0' * 16}-01",  # all-zero parent id
        VALID + "-extra",
        " " + VALID,
        VALID[:-1],
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
    ],
)
def test_an_invalid_traceparent_is_none(value: str | None) -> None:
    assert tracing.upstream(value) is None


def test_without_an_endpoint_nothing_is_set_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.setattr(trace, "set_tracer_provider", pytest.fail)
    assert tracing.export_by_otlp() is False


def test_an_endpoint_installs_an_sdk_provider_exporting_by_otlp(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    installed: list[TracerProvider] = []
    monkeypatch.setattr(trace, "set_tracer_provider", installed.append)
    assert tracing.export_by_otlp() is True
    [provider] = installed
    try:
        [processor] = provider._active_span_processor._span_processors
        assert isinstance(processor.span_exporter, OTLPSpanExporter)  # type: ignore[attr-defined]
    finally:
        provider.shutdown()


def test_without_the_sdk_packages_it_warns_and_runs_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    monkeypatch.setattr(trace, "set_tracer_provider", pytest.fail)
    with caplog.at_level(logging.WARNING, logger="interlink.tracing"):
        assert tracing.export_by_otlp() is False
    assert "`otel` extra" in caplog.text
