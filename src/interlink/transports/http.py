"""The HTTP transport: a POST per delivery over one pooled aiohttp session.

aiohttp rather than httpx: on a 2-core machine it sustains about 5k POST/s against a loopback
receiver where httpx's AsyncClient managed under 1k (encode/httpx#3215). Every failure to get
an answer becomes a :class:`TransportError` whose ``kind`` the outcome classifier reads; a
request that could not be built here (a header value aiohttp refuses, a URL it cannot parse)
is kind ``local``: our failure, never counted against the downstream.

Since issue 13 the engine delivers on :class:`~interlink.transports.reqwest.ReqwestTransport`
by default; this one is the fallback (``INTERLINK_HTTP_CLIENT=aiohttp``), and the home of the
checks both run before sending (:func:`unbuildable`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import ssl
import time
from collections.abc import Mapping
from functools import lru_cache

import aiohttp
from yarl import URL

from interlink.errors import TransportError
from interlink.transports.base import MAX_RESPONSE_BODY, Request, Response
from interlink.transports.tls import TlsProfile, ssl_context

# How much of a failure's text a message keeps (both transports).
DETAIL_LIMIT = 300

# Older aiohttp (before 3.10) reports DNS failures as a plain ClientConnectorError.
_DNS_ERROR: type[BaseException] | None = getattr(aiohttp, "ClientConnectorDNSError", None)

# RFC 9110: a field name is a token; a value is visible characters, spaces, tabs and obs-text.
# aiohttp checks only CR and LF, and only once connected: a NUL went out as is.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_NOT_IN_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# The WHATWG URL standard's forbidden domain code points (and %): reqwest refuses such a host
# as it builds the request, aiohttp looked it up and blamed the downstream's DNS.
_NOT_IN_HOST = re.compile(r"[\x00-\x20\x7f#%/:<>?@\[\\\]^|]")
_NUMBER = re.compile(r"0[xX][0-9A-Fa-f]*|[0-9]+")
# The TLS alerts by which a server refuses our certificate (OpenSSL's reason names).
_ALERT = re.compile(r"ALERT_(\w*CERTIFICATE\w*|UNKNOWN_CA)")
# Errors aiohttp raises while building a request rather than while exchanging it.
_BUILD_ERRORS = (ValueError, TypeError, UnicodeError)


class HttpTransport:
    def __init__(self, limit: int = 256) -> None:
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None
        # One SSLContext per TLS profile (a system's CA, client certificate, pins), made once.
        # aiohttp pools connections by context too, so systems never share a connection.
        self._contexts: dict[TlsProfile, ssl.SSLContext] = {}

    async def send(self, request: Request) -> Response:
        headers = outgoing(request)
        session = self._ensure_session()
        tls: ssl.SSLContext | bool = True
        if request.tls is not None:
            tls = self._contexts.get(request.tls) or self._context(request)
        started = time.perf_counter()
        building = True  # until aiohttp hands back a response: sent, answered, headers read
        try:
            async with session.post(
                request.url,
                data=request.body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=request.timeout),
                # A redirect is an answer to classify (rejected), never a second destination.
                allow_redirects=False,
                ssl=tls,
            ) as response:
                building = False
                body = await _read_head(response)
                return Response(
                    status=response.status,
                    headers=response.headers,
                    body=body,
                    elapsed_ms=(time.perf_counter() - started) * 1000,
                )
        except asyncio.CancelledError:
            raise
        except Exception as error:
            raise _transport_error(error, request, building) from error

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def _context(self, request: Request) -> ssl.SSLContext:
        profile = request.tls
        assert profile is not None
        try:
            context = ssl_context(profile)
        except (ssl.SSLError, ValueError, OSError) as error:
            # A certificate or key OpenSSL refuses: ours to fix, nothing was sent.
            detail = " ".join(str(error).split())[:DETAIL_LIMIT]
            raise TransportError(
                "local",
                f"POST {shown(request.url)}: TLS settings of system {profile.name}: {detail}",
            ) from None
        self._contexts[profile] = context
        return context

    def _ensure_session(self) -> aiohttp.ClientSession:
        # Created on first use so it binds to the loop that sends, not the one that configured.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._limit, limit_per_host=0, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector,
                # Deliveries are independent; a downstream's cookies must not leak between them.
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=True,
                raise_for_status=False,
            )
        return self._session


async def _read_head(response: aiohttp.ClientResponse) -> bytes:
    """Up to MAX_RESPONSE_BODY bytes; a downstream's huge or endless body is never read whole."""
    chunks: list[bytes] = []
    remaining = MAX_RESPONSE_BODY
    while remaining > 0:
        # read(n) returns what is buffered (up to n), not necessarily n bytes.
        chunk = await response.content.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def outgoing(request: Request) -> Mapping[str, str]:
    """The headers to send with ``request``, Content-Type among them once; TransportError
    ``local`` when no request can be built from it. Both HTTP transports ask this first."""
    if request.checked:
        headers: Mapping[str, str] = request.headers
        problem = _url_problem(request.url)
    else:
        # Any other spelling of Content-Type goes: a client would send both it and ours.
        copied = {k: v for k, v in request.headers.items() if k.lower() != "content-type"}
        copied["Content-Type"] = "application/json"
        headers, problem = copied, unbuildable(request.url, copied)
    if problem is not None:
        raise TransportError("local", f"POST {shown(request.url)}: {problem}")
    return headers


def unbuildable(url: str, headers: Mapping[str, str]) -> str | None:
    """Why no request can be built from ``url`` and ``headers``, or None.

    Both HTTP transports ask this first, so both refuse the same inputs as ``local``.
    """
    problem = _url_problem(url)
    if problem is not None:
        return problem
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name):
            return f"{name!r} is not a valid header name"
        bad = _NOT_IN_VALUE.search(value)
        if bad is not None:
            return f"header {name} contains the control character U+{ord(bad.group()):04X}"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"header {name} is not valid Unicode text"
    return None


@lru_cache(maxsize=1024)  # one URL per flow: parsed once, not per delivery
def _url_problem(url: str) -> str | None:
    try:
        parsed = URL(url)
        host = parsed.raw_host  # the IDNA form: what goes out
    except (ValueError, TypeError, UnicodeError) as error:
        return f"the URL cannot be parsed ({error})"
    if parsed.scheme not in ("http", "https") or not host:
        return "the URL is not an absolute http(s) URL"
    if ":" in host:
        return None  # an IPv6 literal, which yarl has checked
    if _NOT_IN_HOST.search(host):
        return f"the URL's host {shown(host)} is not a valid host name"
    try:
        # Each label not empty and at most 63 characters, and valid punycode after "xn--":
        # aiohttp fails on the first two as it resolves, reqwest refuses the third.
        host.encode("idna")
        host.encode("ascii").decode("idna")
    except UnicodeError:
        return f"the URL's host {shown(host)} is not a valid host name"
    if _NUMBER.fullmatch(host.rstrip(".").rpartition(".")[2]):
        # Every URL parser takes a host ending in a number for an IPv4 address, but not the
        # same one ("127.1", "0x7f.1"): only the dotted-quad form means the same to all.
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return f"the URL's host {shown(host)} is not an IPv4 address in dotted-quad form"
    return None


def shown(url: str) -> str:
    # One line, whatever the URL holds.
    return repr(url)[1:-1][:DETAIL_LIMIT]


def _transport_error(error: Exception, request: Request, building: bool) -> TransportError:
    kind = _kind(error)
    if building and (
        isinstance(error, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError)
        or (isinstance(error, _BUILD_ERRORS) and not isinstance(error, aiohttp.ClientError))
    ):
        # aiohttp refused to build the request (a URL it cannot use, a header it will not
        # send): nothing reached the downstream, so nothing says it is down.
        kind = "local"
    if kind == "timeout":
        detail = f"no answer within {request.timeout:g}s"
    else:
        # aiohttp's messages can span lines (a parser error quotes the bad bytes); keep one.
        detail = " ".join(str(error).split())[:DETAIL_LIMIT] or type(error).__name__
    return TransportError(kind, f"POST {shown(request.url)}: {detail}")


def _certificate_alert(error: BaseException) -> bool:
    """A TLS alert about a certificate somewhere in the chain: the server refused ours."""
    seen: BaseException | None = error
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLError | aiohttp.ClientOSError) and _ALERT.search(str(seen)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _kind(error: Exception) -> str:
    # Order matters: aiohttp's exception classes inherit from each other and from OSError.
    if isinstance(error, aiohttp.InvalidURL):
        return "protocol"
    if _DNS_ERROR is not None and isinstance(error, _DNS_ERROR):
        return "dns"
    if isinstance(error, aiohttp.ClientConnectorCertificateError) or _certificate_alert(error):
        # The server's certificate refused (unknown CA, wrong name, pin) or ours by the server.
        return "tls"
    if isinstance(error, aiohttp.ClientSSLError):
        return "protocol"
    if isinstance(error, aiohttp.ClientConnectorError | ConnectionRefusedError):
        return "refused"
    if isinstance(error, aiohttp.ServerTimeoutError | asyncio.TimeoutError):
        return "timeout"
    if isinstance(
        error, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError | ConnectionResetError
    ):
        return "reset"
    if isinstance(error, OSError):
        return "reset"
    # ClientResponseError, ClientPayloadError, other ClientErrors: an answer we cannot read.
    return "protocol"
