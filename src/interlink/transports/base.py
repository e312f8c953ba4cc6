"""The transport interface: how the engine hands a document to a downstream system.

HTTP is the first transport; others (AMQP, Kafka, file drops) fit behind the same two calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from interlink.transports.tls import TlsProfile

# The receipt kept for a delivery; a downstream's full answer is not ours to store.
MAX_RESPONSE_BODY = 4096


@dataclass(slots=True)  # not frozen: one per delivery, and frozen fields cost on each
class Request:
    url: str
    body: bytes
    headers: Mapping[str, str]
    timeout: float
    """Seconds for the whole exchange: connect, send, and read the answer."""
    checked: bool = False
    """The headers were checked when they were made, Content-Type set once among them
    (:func:`interlink.transports.signing.delivery_headers`, the engine's requests): they go as
    they are. Otherwise the transport checks them itself and refuses what cannot travel."""
    tls: TlsProfile | None = None
    """The target system's CA, client certificate and pins (transports/tls.py); None: the
    system's roots alone. The transports keep one client per profile."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes
    """At most the first MAX_RESPONSE_BODY bytes."""
    elapsed_ms: float


class Transport(Protocol):
    async def send(self, request: Request) -> Response:
        """Deliver one request; raises :class:`~interlink.errors.TransportError` if unanswered."""
        ...

    async def close(self) -> None: ...
