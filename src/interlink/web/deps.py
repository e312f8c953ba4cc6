"""Request dependencies shared by every router: the hub, and who is asking."""

from __future__ import annotations

import hmac
import os
from typing import Annotated

from fastapi import Header, Request

from interlink.config import System
from interlink.errors import Unauthorized
from interlink.service import Hub

ADMIN_TOKEN_ENV = "INTERLINK_ADMIN_TOKEN"


def hub_of(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise Unauthorized("missing Authorization: Bearer <token>")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization must be 'Bearer <token>'")
    return token.strip()


async def source_system(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> System:
    """The system a submission comes from, by its token."""
    system = hub_of(request).topology.system_for_token(_bearer(authorization))
    if system is None:
        raise Unauthorized("unknown token")
    return system


async def operator(authorization: Annotated[str | None, Header()] = None) -> str:
    """Management calls need the admin token when one is configured."""
    expected = os.environ.get(ADMIN_TOKEN_ENV)
    if not expected:
        return "api"
    token = _bearer(authorization)
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise Unauthorized("unknown token")
    return "api:admin"


async def reader(request: Request, authorization: Annotated[str | None, Header()] = None) -> str:
    """Reads take the admin token or any system's token."""
    expected = os.environ.get(ADMIN_TOKEN_ENV)
    if not expected:
        return "api"
    token = _bearer(authorization)
    if hmac.compare_digest(token.encode(), expected.encode()):
        return "api:admin"
    system = hub_of(request).topology.system_for_token(token)
    if system is None:
        raise Unauthorized("unknown token")
    return f"api:{system.name}"
