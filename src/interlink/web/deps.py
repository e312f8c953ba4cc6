"""Request dependencies shared by every router: the hub, and who is asking.

Three kinds of credential (DESIGN.md, "Credentials"), each a ``Bearer`` token:

- a system's token (``token_env`` of a system): submits its own document types and reads the
  documents it submitted and their deliveries (:func:`document_reader`);
- a person's token (``token_env`` of a user in ``users:``): what the user's role allows,
  viewer < operator < admin (:func:`reader`, :func:`operator`, :func:`admin`);
- ``INTERLINK_ADMIN_TOKEN``: the break-glass admin.

No token, or one nobody holds, is a 401; a valid token without the role a call needs is a 403
naming that role. On an app created with ``insecure=True`` (``serve --insecure``, loopback
only) a call without a person's token acts as the anonymous admin ``api``.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Request

from interlink.config import System, Topology
from interlink.errors import Forbidden, Unauthorized
from interlink.service import Hub

ADMIN_TOKEN_ENV = "INTERLINK_ADMIN_TOKEN"  # noqa: S105 - a name, not a secret
ROLES = ("viewer", "operator", "admin")


@dataclass(frozen=True)
class Caller:
    """Who is calling: a person (with a role) or a system (``system`` set, no role)."""

    actor: str  # as the audit log names them: api:<user>, api:admin, api:<system> or api
    role: str | None = None
    system: System | None = None

    def may(self, needed: str) -> bool:
        return self.role is not None and ROLES.index(self.role) >= ROLES.index(needed)

    @property
    def source(self) -> str | None:
        """The system whose documents alone this caller may read; None reads everything."""
        return self.system.name if self.system is not None else None


ANONYMOUS = Caller("api", "admin")


def hub_of(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization must be 'Bearer <token>'")
    return token.strip()


def _same(expected: str | None, token: bytes) -> bool:
    return expected is not None and hmac.compare_digest(expected.encode(), token)


def identify(topology: Topology, token: str) -> Caller | None:
    """The holder of ``token``, or None. Every credential is compared, in constant time and
    without stopping at a match, so the time taken says nothing about which one matched."""
    given = token.encode()
    admin = _same(os.environ.get(ADMIN_TOKEN_ENV), given)
    people = [u for u in topology.users if _same(u.token(), given)]
    system = topology.system_for_token(token)
    if admin:
        return Caller("api:admin", "admin")
    if people:
        return Caller(f"api:{people[0].name}", people[0].role)
    if system is not None:
        return Caller(f"api:{system.name}", None, system)
    return None


def management_configured(topology: Topology) -> bool:
    """Is there any credential for the management API (break-glass or a person's token)?"""
    return bool(os.environ.get(ADMIN_TOKEN_ENV)) or any(u.token() for u in topology.users)


def _caller(request: Request, authorization: str | None) -> Caller | None:
    """The caller by token; None for a request without one. 401 for a token nobody holds."""
    token = _bearer(authorization)
    if token is None:
        return None
    caller = identify(hub_of(request).topology, token)
    if caller is None:
        raise Unauthorized("unknown token")
    return caller


def _insecure(request: Request) -> bool:
    return bool(getattr(request.app.state, "insecure", False))


def _needs(needed: str) -> Callable[..., Coroutine[Any, Any, str]]:
    async def person(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> str:
        caller = _caller(request, authorization)
        if _insecure(request) and (caller is None or caller.role is None):
            return ANONYMOUS.actor
        if caller is None:
            raise Unauthorized("missing Authorization: Bearer <token>")
        if caller.role is None:
            assert caller.system is not None
            raise Forbidden(
                f"this call needs the {needed} role; your token belongs to system "
                f"{caller.system.name!r}, which may only submit documents and read its own"
            )
        if not caller.may(needed):
            raise Forbidden(f"this call needs the {needed} role; your token has {caller.role}")
        return caller.actor

    person.__name__ = needed
    return person


# Dependencies returning the audit actor. ``reader`` is the viewer role (any person).
reader = _needs("viewer")
operator = _needs("operator")
admin = _needs("admin")


async def source_system(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> System:
    """The system a submission comes from, by its token."""
    token = _bearer(authorization)
    if token is None:
        raise Unauthorized("missing Authorization: Bearer <token>")
    system = hub_of(request).topology.system_for_token(token)
    if system is None:
        if identify(hub_of(request).topology, token) is not None:
            raise Forbidden("documents are submitted with a system's token, not a person's")
        raise Unauthorized("unknown token")
    return system


async def document_reader(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Caller:
    """Reads of documents and deliveries: a system sees what it submitted, a person (viewer and
    up) everything."""
    caller = _caller(request, authorization)
    if caller is None:
        if _insecure(request):
            return ANONYMOUS
        raise Unauthorized("missing Authorization: Bearer <token>")
    return caller


DocumentReader = Annotated[Caller, Depends(document_reader)]
