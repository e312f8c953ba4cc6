from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from interlink.engine.outcome import (
    MESSAGE_LIMIT,
    Classified,
    Outcome,
    classify_error,
    classify_response,
    local_error,
    parse_retry_after,
)
from interlink.errors import TransportError

NOW = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.DELIVERED),
        (201, Outcome.DELIVERED),
        (202, Outcome.DELIVERED),
        (204, Outcome.DELIVERED),
        (299, Outcome.DELIVERED),
        (409, Outcome.DUPLICATE),
        (408, Outcome.UNAVAILABLE),
        (425, Outcome.UNAVAILABLE),
        (500, Outcome.UNAVAILABLE),
        (501, Outcome.UNAVAILABLE),
        (502, Outcome.UNAVAILABLE),
        (503, Outcome.UNAVAILABLE),
        (504, Outcome.UNAVAILABLE),
        (505, Outcome.UNAVAILABLE),
        (599, Outcome.UNAVAILABLE),
        (429, Outcome.THROTTLED),
        (401, Outcome.UNAUTHORIZED),
        (403, Outcome.UNAUTHORIZED),
        (301, Outcome.REJECTED),
        (302, Outcome.REJECTED),
        (304, Outcome.REJECTED),
        (400, Outcome.REJECTED),
        (404, Outcome.REJECTED),
        (405, Outcome.REJECTED),
        (410, Outcome.REJECTED),
        (413, Outcome.REJECTED),
        (415, Outcome.REJECTED),
        (422, Outcome.REJECTED),
        (451, Outcome.REJECTED),
    ],
)
def test_status_table(status: int, outcome: Outcome) -> None:
    classified = classify_response(status, {}, b"", NOW)
    assert classified.outcome is outcome
    assert classified.detail.startswith(f"HTTP {status}")


@pytest.mark.parametrize("status", [0, 42, 99, 600, 999, -1])
def test_impossible_status_is_unavailable(status: int) -> None:
    assert classify_response(status, {}, b"", NOW) == Classified(
        Outcome.UNAVAILABLE, detail="invalid HTTP status"
    )


@pytest.mark.parametrize(
    ("outcome", "delivered"),
    [
        (Outcome.DELIVERED, True),
        (Outcome.DUPLICATE, True),
        (Outcome.UNAVAILABLE, False),
        (Outcome.THROTTLED, False),
        (Outcome.UNAUTHORIZED, False),
        (Outcome.REJECTED, False),
    ],
)
def test_delivered_counts_duplicates(outcome: Outcome, delivered: bool) -> None:
    assert Classified(outcome).delivered is delivered


def test_detail_is_short_status_text() -> None:
    assert classify_response(503, {}, b"<html>down</html>", NOW).detail == "HTTP 503"
    assert classify_response(200, {}, b'{"ok":true}', NOW).detail == "HTTP 200"


def test_rejected_detail_carries_downstream_message() -> None:
    body = b'{"error":  "order_no\n\tis   required"}'
    classified = classify_response(422, {}, body, NOW)
    assert classified.outcome is Outcome.REJECTED
    assert classified.detail == 'HTTP 422: {"error": "order_no is required"}'


def test_rejected_detail_is_capped_and_survives_bad_utf8() -> None:
    classified = classify_response(400, {}, b"\xff\xfe" + b"x" * 1000, NOW)
    message = classified.detail.removeprefix("HTTP 400: ")
    assert len(message) == 300
    assert message.startswith("\ufffd\ufffdx")


def test_rejected_without_body_has_bare_detail() -> None:
    assert classify_response(404, {}, b"  \n", NOW).detail == "HTTP 404"


def test_throttled_reads_retry_after_case_insensitively() -> None:
    assert classify_response(429, {"Retry-After": "30"}, b"", NOW).retry_after == 30.0
    assert classify_response(429, {"retry-after": "7"}, b"", NOW).retry_after == 7.0
    assert classify_response(429, {}, b"", NOW).retry_after is None


def test_retry_after_only_for_throttled() -> None:
    assert classify_response(503, {"Retry-After": "30"}, b"", NOW).retry_after is None


@pytest.mark.parametrize(
    ("kind", "detail"),
    [
        ("refused", "connection refused"),
        ("reset", "connection reset"),
        ("dns", "DNS lookup failed"),
        ("timeout", "timed out"),
        ("protocol", "invalid HTTP response"),
    ],
)
def test_transport_errors_are_unavailable(kind: str, detail: str) -> None:
    classified = classify_error(TransportError(kind, "POST http://x/: boom"))
    assert classified == Classified(Outcome.UNAVAILABLE, detail=detail)
    assert not classified.delivered


def test_unknown_transport_error_is_unavailable() -> None:
    classified = classify_error(TransportError("weird", "something odd"))
    assert classified.outcome is Outcome.UNAVAILABLE
    assert classified.detail == "something odd"


def test_a_request_not_built_here_is_a_local_error() -> None:
    classified = classify_error(
        TransportError("local", "POST http://x/: header Interlink-Key contains\nU+000A")
    )
    assert classified.outcome is Outcome.LOCAL_ERROR
    assert classified.detail == "POST http://x/: header Interlink-Key contains U+000A"
    assert not classified.delivered
    assert len(local_error("x" * 1000).detail) == MESSAGE_LIMIT


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 5 ", 5.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("-5", 0.0),
        ("86400", 86400.0),
        ("999999", 86400.0),
    ],
)
def test_retry_after_delta_seconds(value: str, seconds: float) -> None:
    assert parse_retry_after(value, NOW) == seconds


def test_retry_after_http_date() -> None:
    value = format_datetime(NOW + timedelta(seconds=90), usegmt=True)
    assert value.endswith("GMT")
    assert parse_retry_after(value, NOW) == 90.0
    assert parse_retry_after("Mon, 05 Jan 2026 02:01:00 GMT", NOW) == 60.0


def test_retry_after_http_date_in_the_past_is_zero() -> None:
    assert parse_retry_after("Mon, 05 Jan 2026 01:00:00 GMT", NOW) == 0.0


def test_retry_after_far_future_date_is_capped() -> None:
    assert parse_retry_after("Fri, 01 Jan 2027 00:00:00 GMT", NOW) == 86400.0


@pytest.mark.parametrize("value", [None, "", "   ", "soon", "12abc", "Mon, 99 Foo 2026", "1e5"])
def test_retry_after_garbage_is_none(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None
