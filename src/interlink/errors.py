"""The exception tree.

Every error a user can see is an :class:`InterlinkError`. Each boundary (topology loading, the
store, the HTTP transport, the API, the CLI) maps foreign exceptions (pydantic, SQLAlchemy,
aiohttp) into this tree, so users get a clear message and never a traceback.

    InterlinkError
    ├── ConfigError            the topology file does not validate (problems: ["file:line: msg"])
    ├── StoreError             the database failed or its schema is not what we expect
    ├── NotFound               no such document, delivery, flow, system
    ├── Conflict               the request contradicts stored state (idempotency key reuse)
    ├── InputError             a request or command argument is wrong (bad filter, bad time)
    │   ├── Unauthorized       no token, or a token no system owns
    │   ├── Forbidden          the token's system (or the person's role) may not do that
    │   ├── UnsupportedMediaType  a state-changing call that is not application/json
    │   ├── TooLarge           a document over the size limit
    │   └── Invalid            shape or contract violation (problems: [{"path", "message"}])
    └── TransportError         a delivery could not be made (kind: refused, timeout, ...)
"""

from __future__ import annotations

from typing import Any


class InterlinkError(Exception):
    """Base of everything Interlink raises on purpose."""

    code = "error"
    http_status = 500

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        body.update(self.detail)
        return body


class ConfigError(InterlinkError):
    code = "config"
    http_status = 500

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems), problems=problems)
        self.problems = problems


class StoreError(InterlinkError):
    code = "store"
    http_status = 503


class NotFound(InterlinkError):
    code = "not_found"
    http_status = 404


class Conflict(InterlinkError):
    code = "conflict"
    http_status = 409


class InputError(InterlinkError):
    code = "bad_request"
    http_status = 400


class Unauthorized(InputError):
    code = "unauthorized"
    http_status = 401


class Forbidden(InputError):
    code = "forbidden"
    http_status = 403


class UnsupportedMediaType(InputError):
    code = "unsupported_media_type"
    http_status = 415


class TooLarge(InputError):
    code = "too_large"
    http_status = 413


class Invalid(InputError):
    code = "invalid"
    http_status = 422

    def __init__(self, message: str, problems: list[dict[str, str]] | None = None) -> None:
        super().__init__(message, problems=problems or [])
        self.problems = problems or []


class TransportError(InterlinkError):
    """A request that got no usable HTTP answer. ``kind`` drives the outcome class."""

    code = "transport"

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message, kind=kind)
        self.kind = kind
