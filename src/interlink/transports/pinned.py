"""Asking a URL at the addresses its host name was checked at: no DNS rebinding.

A check of where a host name points means nothing if the client resolves the name again when
it connects: a name may answer with a public address for the check and with 127.0.0.1 or
169.254.169.254 (cloud metadata) a moment later. :func:`pinned_open` resolves the name once,
checks every address, and connects only to those addresses; the request still names the host
(the ``Host`` header) and TLS still sends and verifies the certificate for the host name
(SNI), never for the address. Proxies from the environment are not used: a proxy would
resolve the name itself. Redirects are not followed (a 3xx is an ``HTTPError``).
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import urllib.parse
import urllib.request
from typing import Any


class LocalAddress(Exception):
    """The host resolves to an address that may not be asked (or does not resolve)."""


def local_address_problem(host: str, addresses: list[str]) -> str | None:
    """Why ``host`` at ``addresses`` may not be asked without ``allow_local``, or None:
    loopback, link-local (cloud metadata) and unspecified addresses are local."""
    for text in addresses:
        address = ipaddress.ip_address(text.split("%")[0])
        # ::ffff:127.0.0.1 reaches 127.0.0.1, yet is not "loopback" as an IPv6 address.
        address = getattr(address, "ipv4_mapped", None) or address
        if address.is_loopback or address.is_link_local or address.is_unspecified:
            return (
                f"{host} resolves to the local address {address}; set allow_local: true "
                "for an upstream on this machine"
            )
    return None


def resolve(host: str, port: int | None) -> list[str]:
    """The addresses of ``host``, each once, in the resolver's order; LocalAddress when the
    name does not resolve."""
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise LocalAddress(f"cannot resolve {host}: {exc}") from None
    found: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in found:
            found.append(address)
    if not found:
        raise LocalAddress(f"cannot resolve {host}: no address")
    return found


def checked_addresses(url: str, allow_local: bool) -> list[str]:
    """The addresses ``url``'s host resolves to, every one of them checked; LocalAddress
    when one is local (unless ``allow_local``) or the name does not resolve."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    addresses = resolve(host, parts.port)
    if not allow_local:
        problem = local_address_problem(host, addresses)
        if problem is not None:
            raise LocalAddress(problem)
    return addresses


def _connector(addresses: list[str]) -> Any:
    """A ``create_connection`` that goes to the checked addresses, whatever host it is given."""

    def connect(
        address: tuple[str, int], timeout: Any = None, source_address: Any = None
    ) -> socket.socket:
        error: OSError | None = None
        for ip in addresses:
            try:
                return socket.create_connection((ip, address[1]), timeout, source_address)
            except OSError as exc:
                error = exc
        assert error is not None
        raise error

    return connect


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, *, addresses: list[str], **kwargs: Any) -> None:
        super().__init__(host, **kwargs)
        self._create_connection = _connector(addresses)


class _PinnedHTTPS(http.client.HTTPSConnection):
    # HTTPSConnection.connect wraps the socket with server_hostname=self.host: the name.
    def __init__(self, host: str, *, addresses: list[str], **kwargs: Any) -> None:
        super().__init__(host, **kwargs)
        self._create_connection = _connector(addresses)


class _PinnedHandler(urllib.request.HTTPHandler, urllib.request.HTTPSHandler):
    def __init__(self, addresses: list[str], context: ssl.SSLContext | None) -> None:
        urllib.request.HTTPHandler.__init__(self)
        self._addresses = addresses
        self._pinned_context = context

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        def make(host: str, **kwargs: Any) -> _PinnedHTTP:
            return _PinnedHTTP(host, addresses=self._addresses, **kwargs)

        return self.do_open(make, req)

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        def make(host: str, **kwargs: Any) -> _PinnedHTTPS:
            return _PinnedHTTPS(
                host, addresses=self._addresses, context=self._pinned_context, **kwargs
            )

        return self.do_open(make, req)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def pinned_open(
    request: urllib.request.Request,
    timeout: float,
    allow_local: bool,
    context: ssl.SSLContext | None = None,
) -> http.client.HTTPResponse:
    """Open ``request`` (http or https) at the checked addresses of its host.

    LocalAddress when the host may not be asked; urllib's HTTPError for a non-2xx answer
    (a redirect among them), URLError or OSError when it cannot be reached.
    """
    addresses = checked_addresses(request.full_url, allow_local)
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.UnknownHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
        _NoRedirects(),
        _PinnedHandler(addresses, context),
    ):
        opener.add_handler(handler)
    response: http.client.HTTPResponse = opener.open(request, timeout=timeout)
    return response
