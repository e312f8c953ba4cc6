"""The HTTP transport on pyreqwest: a POST per delivery over Rust's reqwest and hyper.

Chosen over aiohttp by measurement (docs/transports.md): about half the CPU per request in our
process, which is what bounds one worker's delivery rate. It behaves as :class:`HttpTransport`
does, input for input: the same requests refused as ``local`` (the one check in http.py), the
same kinds for the same failures, redirects answered not followed, and never more than
MAX_RESPONSE_BODY bytes of an answer read.

reqwest reports failures as a few exception classes with a chain of causes; which phase failed
(connect or exchange) is only in the chain's text, so :func:`_kind` reads it. The integration
tests pin those texts against real sockets, so a pyreqwest upgrade that changes them fails there.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator, Mapping
from datetime import timedelta
from functools import lru_cache
from importlib.metadata import version

from pyreqwest import exceptions as rq
from pyreqwest.client import Client, ClientBuilder
from pyreqwest.http import HeaderMap
from pyreqwest.response import Response as RqResponse

from interlink.errors import TransportError
from interlink.transports.base import MAX_RESPONSE_BODY, Request, Response
from interlink.transports.http import DETAIL_LIMIT, HttpTransport, outgoing, shown
from interlink.transports.tls import TlsProfile

# aiohttp's default keep-alive: a downstream that drops idle connections sooner than reqwest's
# 90 s default would otherwise meet more stale pooled connections than it does with aiohttp.
_IDLE = timedelta(seconds=15)
# hyper decodes a header value only if it is visible ASCII; anything else reads as this.
_UNREADABLE = "\ufffd"
_CERTIFICATE = re.compile(r"invalid peer certificate|fatal alert: (\w*Certificate|UnknownCA)")
_PEM_CERTIFICATE = re.compile(
    rb"-----BEGIN CERTIFICATE-----\r?\n.+?-----END CERTIFICATE-----", re.DOTALL
)


class ReqwestTransport:
    def __init__(self, limit: int = 256) -> None:
        self._limit = limit
        self._client: Client | None = None
        # One client per TLS profile (a system's CA, client certificate), built on first use.
        self._clients: dict[TlsProfile, Client] = {}
        # reqwest never shows us the server's certificate, so a pinning system's requests go
        # through the aiohttp transport, which checks the pin in each handshake.
        self._pinned: HttpTransport | None = None

    async def send(self, request: Request) -> Response:
        tls = request.tls
        if tls is None:
            client = self._client or self._ensure_client()
        elif tls.pins:
            return await self._pinning().send(request)
        else:
            client = self._clients.get(tls) or self._profile_client(request, tls)
        headers = outgoing(request)
        started = time.perf_counter()
        building = True  # until reqwest has a request to send
        try:
            streamed = (
                client.post(request.url)
                .headers(headers)
                .body_bytes(request.body)
                # One deadline for connect, send, answer and the part of the body we read.
                .timeout(_timedelta(request.timeout))
                .streamed_read_buffer_limit(MAX_RESPONSE_BODY)
                .build_streamed()
            )
            building = False
            async with streamed as response:
                body = await _read_head(response)
                return Response(
                    status=response.status,
                    headers=_Headers(response.headers),
                    body=body,
                    elapsed_ms=(time.perf_counter() - started) * 1000,
                )
        except asyncio.CancelledError:
            raise
        except Exception as error:
            raise _transport_error(error, request, building) from error

    async def close(self) -> None:
        clients = [*self._clients.values(), *([self._client] if self._client else [])]
        self._client, self._clients = None, {}
        for client in clients:
            await client.close()
        if self._pinned is not None:
            pinned, self._pinned = self._pinned, None
            await pinned.close()

    def _ensure_client(self) -> Client:
        # Created on first use so it binds to the loop that sends, not the one that configured.
        if self._client is None:
            self._client = self._builder().build()
        return self._client

    def _builder(self) -> ClientBuilder:
        return (
            ClientBuilder()
            # A redirect is an answer to classify (rejected), never a second destination.
            .follow_redirects(False)
            .max_connections(self._limit)
            .pool_idle_timeout(_IDLE)
            # aiohttp speaks HTTP/1.1 only; one connection per request in flight keeps a
            # system's `concurrency` meaning the same with either client.
            .http1_only()
            # aiohttp ignores proxy variables unless told; a delivery goes where the
            # topology says, not through whatever HTTP_PROXY the service inherited.
            .no_proxy()
            .user_agent(f"interlink/{version('interlink')}")
        )

    def _profile_client(self, request: Request, profile: TlsProfile) -> Client:
        builder = self._builder()
        try:
            # The CA bundle one certificate at a time: reqwest reads one per call.
            for certificate in _PEM_CERTIFICATE.findall(profile.ca_pem or b""):
                builder = builder.add_root_certificate_pem(certificate)
            if profile.cert_pem is not None and profile.key_pem is not None:
                builder = builder.identity_pem(profile.cert_pem + b"\n" + profile.key_pem)
            client = builder.build()
        except Exception as error:
            # A certificate or key rustls refuses: ours to fix, nothing was sent.
            detail = " ".join(_detail(error).split())[:DETAIL_LIMIT]
            where = f"POST {shown(request.url)}: TLS settings of system {profile.name}"
            raise TransportError("local", f"{where}: {detail}") from None
        self._clients[profile] = client
        return client

    def _pinning(self) -> HttpTransport:
        if self._pinned is None:
            self._pinned = HttpTransport(self._limit)
        return self._pinned


@lru_cache(maxsize=256)  # a few timeouts, one per system: made once, not per delivery
def _timedelta(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


async def _read_head(response: RqResponse) -> bytes:
    """Up to MAX_RESPONSE_BODY bytes; a downstream's huge or endless body is never read whole."""
    reader = response.body_reader
    # The usual receipt is small and says its length: once that much is read, asking again
    # only to hear the end costs a round through the Rust runtime per delivery. (Not for a
    # compressed body: its length is not the length of what we read.)
    length = response.get_header("content-length")
    plain = response.get_header("content-encoding") is None
    expected = int(length) if plain and length is not None and length.isdigit() else None
    chunks: list[bytes] = []
    remaining = MAX_RESPONSE_BODY
    read = 0
    while remaining > 0 and (expected is None or read < expected):
        chunk = await reader.read(remaining)
        if not chunk:
            break
        chunks.append(bytes(chunk))
        remaining -= len(chunk)
        read += len(chunk)
    return b"".join(chunks)


class _Headers(Mapping[str, str]):
    """A response's headers: case-insensitive, one value per name (the first), always text.

    pyreqwest's HeaderMap raises ValueError for a value that is not visible ASCII; the outcome
    classifier must be able to read any answer, so such a value reads as U+FFFD. Nothing is
    copied until asked: the classifier reads one header (Retry-After) of a few answers.
    """

    __slots__ = ("_map",)

    def __init__(self, headers: HeaderMap) -> None:
        self._map = headers

    def __getitem__(self, name: str) -> str:
        try:
            return self._map[name]
        except ValueError:
            return _UNREADABLE

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(self._map.keys()))

    def __len__(self) -> int:
        return self._map.keys_len()

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._map

    def __repr__(self) -> str:
        return f"_Headers({dict(self)!r})"


def _transport_error(error: Exception, request: Request, building: bool) -> TransportError:
    kind = "local" if building and isinstance(error, ValueError) else _kind(error)
    if kind == "timeout":
        detail = f"no answer within {request.timeout:g}s"
    else:
        detail = " ".join(_detail(error).split())[:DETAIL_LIMIT] or type(error).__name__
    return TransportError(kind, f"POST {shown(request.url)}: {detail}")


def _kind(error: Exception) -> str:
    # Subclasses first: a timeout is a TransportError too, and every class is a RequestError.
    if isinstance(error, rq.RequestTimeoutError | TimeoutError):
        return "timeout"
    if isinstance(error, rq.ConnectError):
        causes = _causes(error)
        if any(_CERTIFICATE.search(cause) for cause in causes):
            # rustls refused the server's certificate (unknown issuer, wrong name), or the
            # server refused ours with a TLS alert (CertificateRequired, BadCertificate...).
            return "tls"
        if "client error (Connect)" not in causes:
            # The connection was up and the exchange broke: closed or reset under us.
            return "reset"
        if "dns error" in causes:
            return "dns"
        if "tcp connect error" in causes:
            return "refused"
        # The connect phase after TCP is the TLS handshake: aiohttp's ClientSSLError.
        return "protocol"
    if isinstance(error, rq.NetworkError | rq.ClientClosedError | OSError):
        return "reset"
    # DecodeError (a reply that is not HTTP, a body cut short) and anything else: an answer we
    # cannot read.
    return "protocol"


def _causes(error: Exception) -> list[str]:
    details = getattr(error, "details", None)
    if not isinstance(details, dict):
        return []
    return [str(cause.get("message", "")) for cause in details.get("causes") or []]


def _detail(error: Exception) -> str:
    # pyreqwest's str() is a tuple repr; the last cause is the specific one ("Connection
    # refused (os error 111)", "invalid HTTP version parsed").
    causes = _causes(error)
    message = getattr(error, "message", None) or str(error)
    return f"{message}: {causes[-1]}" if causes else message
