"""What a request must be before any route sees it: addressed to this server by name, and, if it
changes state under ``/api/``, sent as JSON (or NDJSON to intake, or multipart where a file is
uploaded).

- **Host** (DNS rebinding): a page on ``attacker.example`` whose name is re-pointed at this
  server reaches it with ``Host: attacker.example``. Only the ``listen`` host, loopback names
  when listening on loopback (or on every interface), and ``allowed_hosts`` are answered;
  anything else is a 400. A ``Host`` that is an IP address cannot come from rebinding, so on a
  wildcard ``listen`` (``0.0.0.0``, ``::``) addresses are answered too.
- **Content-Type** (cross-site requests): an HTML form, or a ``no-cors`` fetch, can send a POST
  to any site, but only as ``application/x-www-form-urlencoded``, ``multipart/form-data``,
  ``text/plain`` or without a body type. ``application/json`` makes the browser ask the
  server first (CORS preflight), which this server never grants. So a state-changing call
  must say ``application/json``; multipart only on the routes that take a file.

A pure ASGI middleware: ``BaseHTTPMiddleware`` costs a task per request on the intake path.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from interlink.errors import InputError, InterlinkError, UnsupportedMediaType

Scope = dict[str, Any]
ASGIApp = Callable[..., Any]

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
JSON_TYPES = frozenset({"application/json"})
# Intake also reads one document per line (see docs/api.md).
NDJSON_TYPES = frozenset(
    {"application/x-ndjson", "application/ndjson", "application/jsonl", "application/json-seq"}
)
INTAKE_PATH = "/api/v1/documents"


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_wildcard(host: str) -> bool:
    return host.strip("[]") in ("0.0.0.0", "::", "")  # noqa: S104 - recognises, binds nothing


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class HostPolicy:
    """Which ``Host`` header names this server answers to."""

    def __init__(self, listen_host: str, allowed: Iterable[str]) -> None:
        listen = listen_host.strip("[]").lower()
        names = {name.lower().strip("[]").rstrip(".") for name in allowed}
        self.any = "*" in names
        self.addresses = is_wildcard(listen)
        if not is_wildcard(listen):
            names.add(listen)
        if self.addresses or is_loopback(listen):
            names |= LOOPBACK_NAMES
        self.names = frozenset(names)

    def allows(self, header: str | None) -> bool:
        if self.any:
            return True
        if not header:
            return False
        host = _host_part(header.strip().lower()).rstrip(".")
        return host in self.names or (self.addresses and _is_address(host))


def _host_part(header: str) -> str:
    """``name:port``, ``[v6]:port``, ``name`` → the name or address."""
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rpartition(":")[0] if ":" in header else header


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


class TrustBoundary:
    """ASGI middleware refusing what :mod:`interlink.web.boundary` describes."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        hosts: HostPolicy,
        takes_files: Callable[[Scope], bool],
    ) -> None:
        self.app = app
        self.hosts = hosts
        self.takes_files = takes_files

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        # Only two headers matter here; servers hand ASGI their names in lower case.
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            if name == b"host" or name == b"content-type":
                headers[name.decode()] = value.decode("latin-1")
        problem = self._problem(scope, headers)
        if problem is None:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = orjson.dumps({"error": problem.to_json()})
        await send(
            {
                "type": "http.response.start",
                "status": problem.http_status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _problem(self, scope: Scope, headers: dict[str, str]) -> InterlinkError | None:
        host = headers.get("host")
        if not self.hosts.allows(host):
            shown = (host or "")[:100]
            return InputError(
                f"this server does not answer to the host name {shown!r}; add it to "
                "allowed_hosts in the topology if clients use it"
            )
        method = scope.get("method", "GET")
        path: str = scope.get("path", "")
        if method not in STATE_CHANGING or not path.startswith("/api/"):
            return None
        kind = media_type(headers.get("content-type"))
        if kind in JSON_TYPES:
            return None
        if path == INTAKE_PATH and kind in NDJSON_TYPES:
            return None
        if kind == "multipart/form-data" and self.takes_files(scope):
            return None
        accepted = "application/json"
        if path == INTAKE_PATH:
            accepted += " or application/x-ndjson"
        elif self.takes_files(scope):
            accepted += " or multipart/form-data (with the file)"
        return UnsupportedMediaType(
            f"{method} {path} must be sent with Content-Type: {accepted} (this request has "
            f"{kind or 'none'}); send application/json even without a body"
        )
