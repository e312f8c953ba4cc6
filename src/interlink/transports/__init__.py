"""Transports: how the engine hands a document to a downstream system.

:func:`default_transport` is the HTTP transport the shells give the engine: pyreqwest, the
faster client by measurement (docs/transports.md), unless ``INTERLINK_HTTP_CLIENT=aiohttp``
asks for the aiohttp one, kept as a fallback since it costs little code.
"""

from __future__ import annotations

import os

from interlink.errors import ConfigError
from interlink.transports.base import Transport

CLIENT_ENV = "INTERLINK_HTTP_CLIENT"
CLIENTS = ("reqwest", "aiohttp")


def default_transport() -> Transport:
    """The HTTP transport ``INTERLINK_HTTP_CLIENT`` names (``reqwest`` when unset or empty)."""
    return by_name(os.environ.get(CLIENT_ENV, "").strip().lower() or CLIENTS[0])


def by_name(name: str) -> Transport:
    """The HTTP transport on the client ``name`` (one of :data:`CLIENTS`)."""
    if name == "reqwest":
        from interlink.transports.reqwest import ReqwestTransport

        return ReqwestTransport()
    if name == "aiohttp":
        from interlink.transports.http import HttpTransport

        return HttpTransport()
    raise ConfigError([f"{CLIENT_ENV}={name!r}: expected one of {', '.join(CLIENTS)}"])
