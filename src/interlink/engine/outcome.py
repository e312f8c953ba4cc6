"""What a downstream's answer means for a delivery.

The one place that turns an HTTP status (or a transport failure) into an outcome class; the
engine, the circuit breaker and the alerts all act on the class, never on raw status codes.
See DESIGN.md, "Outcome classification (HTTP)".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum

from interlink.errors import TransportError

# A Retry-After further out than this is more likely a bug downstream than a plan; the retry
# schedule's give-up deadline still applies on top.
MAX_RETRY_AFTER = 24 * 60 * 60.0

# Enough of a rejection message for a person to see why, short enough for an alert or a list.
MESSAGE_LIMIT = 300

_UNAVAILABLE_4XX = frozenset({408, 425})
_UNAUTHORIZED = frozenset({401, 403})
_DELTA_SECONDS = re.compile(r"[+-]?\d+(\.\d+)?")
_WHITESPACE = re.compile(r"\s+")


class Outcome(StrEnum):
    DELIVERED = "delivered"
    DUPLICATE = "duplicate"
    UNAVAILABLE = "unavailable"
    THROTTLED = "throttled"
    UNAUTHORIZED = "unauthorized"
    REJECTED = "rejected"
    LOCAL_ERROR = "local_error"
    """The request could not be built or signed here: nothing reached the downstream."""


@dataclass(frozen=True, slots=True)
class Classified:
    outcome: Outcome
    retry_after: float | None = None
    """Seconds the downstream asked us to wait (429 only)."""
    detail: str = ""
    """Short human text: "HTTP 503", "connection refused", "HTTP 422: <message>"."""

    @property
    def delivered(self) -> bool:
        """True when the downstream has the document, whether from this request or before."""
        return self.outcome in (Outcome.DELIVERED, Outcome.DUPLICATE)


def classify_response(
    status: int, headers: Mapping[str, str], body: bytes, now: datetime
) -> Classified:
    """Classify an HTTP answer. ``now`` resolves a Retry-After given as an HTTP-date."""
    delivered = _DELIVERED.get(status)
    if delivered is not None:
        return delivered
    if status < 100 or status > 599:
        return Classified(Outcome.UNAVAILABLE, detail="invalid HTTP status")
    detail = f"HTTP {status}"
    if status == 409:
        return Classified(Outcome.DUPLICATE, detail=detail)
    if status == 429:
        retry_after = parse_retry_after(_header(headers, "Retry-After"), now)
        return Classified(Outcome.THROTTLED, retry_after=retry_after, detail=detail)
    if status in _UNAUTHORIZED:
        return Classified(Outcome.UNAUTHORIZED, detail=detail)
    # Every 5xx is the server's own trouble, so waiting may help; 408 and 425 say the same.
    if status >= 500 or status in _UNAVAILABLE_4XX:
        return Classified(Outcome.UNAVAILABLE, detail=detail)
    # 1xx should never reach us as a final answer; like 3xx and other 4xx, retrying won't help.
    message = _message(body)
    return Classified(Outcome.REJECTED, detail=f"{detail}: {message}" if message else detail)


# The answer to almost every delivery, made once (Classified is immutable).
_DELIVERED = {
    status: Classified(Outcome.DELIVERED, detail=f"HTTP {status}") for status in range(200, 300)
}


_ERROR_DETAILS = {
    "refused": "connection refused",
    "reset": "connection reset",
    "dns": "DNS lookup failed",
    "timeout": "timed out",
    "protocol": "invalid HTTP response",
}


def classify_error(error: TransportError) -> Classified:
    """A request without a usable answer: the downstream is, for now, unavailable; unless
    the request never left (kind ``local``), which says nothing about the downstream."""
    if error.kind == "local":
        return local_error(error.message)
    # Unknown kinds too: not having an answer is never proof the document was refused.
    detail = _ERROR_DETAILS.get(error.kind) or error.message or error.kind
    return Classified(Outcome.UNAVAILABLE, detail=detail[:MESSAGE_LIMIT])


def local_error(message: str) -> Classified:
    """A request we could not build or sign: the delivery goes dead (``local_error``) and the
    downstream's circuit never hears of it. The message says what to fix."""
    text = _WHITESPACE.sub(" ", message).strip() or "the request could not be built"
    return Classified(Outcome.LOCAL_ERROR, detail=text[:MESSAGE_LIMIT])


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), or None."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if _DELTA_SECONDS.fullmatch(value):
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            # RFC 9110 dates are always GMT; "-0000" parses as naive.
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # Plain dicts reach us as well as case-insensitive multidicts.
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, candidate in headers.items():
        if key.lower() == lowered:
            return candidate
    return None


def answer_text(body: bytes) -> str:
    """A downstream's answer as text fit to store: invalid UTF-8 and NUL (which PostgreSQL's
    text type refuses) become U+FFFD."""
    return body.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def _message(body: bytes) -> str:
    text = answer_text(body)
    return _WHITESPACE.sub(" ", text).strip()[:MESSAGE_LIMIT]
