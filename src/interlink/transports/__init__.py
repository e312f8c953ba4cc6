"""Transports: how the engine hands a document to a downstream system.

:func:`default_transport` is the HTTP transport the shells give the engine: pyreqwest, the
faster client by measurement (docs/transports.md), unless ``INTERLINK_HTTP_CLIENT=aiohttp``
asks for the aiohttp one, kept as a fallback since it costs little code. :func:`for_system`
gives a system that is not reached by HTTP (a message broker) its own transport.
"""

from __future__ import annotations

import os

from interlink.config import System
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


def for_system(system: System) -> Transport | None:
    """The transport of its own for a system reached by a broker (``transport: amqp`` or
    ``nats``): one connection, opened on the first send. None for a system the engine's HTTP
    transport serves."""
    if system.transport == "amqp" and system.amqp is not None:
        from interlink.transports.amqp import AmqpTransport

        return AmqpTransport(system.name, system.amqp.url_env)
    if system.transport == "nats" and system.nats is not None:
        from interlink.transports.jetstream import NatsTransport

        return NatsTransport(system.name, system.nats)
    return None
