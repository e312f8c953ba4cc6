"""Multipart uploads read by the handler itself, after the caller's credential is checked.

FastAPI reads a route's ``File()``/``Form()`` parameters before it runs the route's
dependencies, so an upload of any size was spooled to disk before anyone asked who sent it.
Upload routes declare no body parameters; they call :func:`read_form` once their
dependencies (authentication, role) have passed. The size is checked from
``Content-Length`` before a byte is read, and again while the body streams in, so a body
that lies about its length (or sends none, chunked) stops at the limit too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import JSONResponse

from interlink.errors import InputError, TooLarge

# Room for the multipart framing, the form's small fields and the CSRF token around a file.
FORM_OVERHEAD = 64 * 1024


def _too_large(limit: int, what: str) -> TooLarge:
    return TooLarge(f"{what} over {limit} bytes")


async def read_form(
    request: Request, limit: int, *, what: str = "the upload", max_files: int = 1
) -> FormData:
    """The request's multipart form, at most ``limit`` bytes of body; TooLarge beyond."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise InputError("send the file as multipart/form-data")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit, what)

    async def body() -> AsyncIterator[bytes]:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit, what)
            yield chunk

    parser = MultiPartParser(
        request.headers,
        body(),  # type: ignore[arg-type]
        max_files=max_files,
        max_fields=20,
        max_part_size=FORM_OVERHEAD,
    )
    try:
        return await parser.parse()
    except MultiPartException as exc:
        raise InputError(f"malformed multipart form: {exc.message}") from None


async def read_file(request: Request, limit: int, *, what: str) -> tuple[str, bytes]:
    """The one uploaded file of a form (its name and at most ``limit + 1`` bytes: one byte
    over is enough for the caller to refuse, and nothing more is read)."""
    form = await read_form(request, limit + FORM_OVERHEAD, what=what)
    try:
        file = file_of(form)
        if file is None:
            raise InputError("the form needs a 'file' part")
        return file.filename or "attachment", await file.read(limit + 1)
    finally:
        await form.close()


def file_of(form: FormData, name: str = "file") -> UploadFile | None:
    """The uploaded file under ``name``, or None when the form has none."""
    value: Any = form.get(name)
    return value if isinstance(value, UploadFile) else None


def multipart_body(description: str) -> dict[str, Any]:
    """The OpenAPI request body of an upload route (the handler reads the form itself)."""
    return {
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "file": {
                                "type": "string",
                                "format": "binary",
                                "description": description,
                            }
                        },
                    }
                }
            }
        }
    }


class BodyLimit:
    """ASGI middleware: no request body over ``limit`` bytes reaches any route (``wide`` for
    paths under ``wide_prefixes``, the reconciliation uploads).

    The routes that take uploads read their form after authentication (:func:`read_form`);
    this bound covers every other form, such as a console form that FastAPI or the console
    reads before its role check. A declared ``Content-Length`` over the limit is answered 413
    before the route runs; a body that streams past it stops there with an error.
    """

    def __init__(
        self, app: Any, *, limit: int, wide: int, wide_prefixes: tuple[str, ...] = ()
    ) -> None:
        self.app = app
        self.limit = limit
        self.wide = wide
        self.wide_prefixes = wide_prefixes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit = self.wide if path.startswith(self.wide_prefixes) else self.limit
        declared = next(
            (v for k, v in scope.get("headers", ()) if k.lower() == b"content-length"), None
        )
        if declared is not None and declared.isdigit() and int(declared) > limit:
            error = _too_large(limit, "the request body")
            response = JSONResponse(
                {"error": error.to_json()}, status_code=error.http_status, headers=_CLOSE
            )
            await response(scope, receive, send)
            return
        received = 0

        async def bounded() -> Any:
            nonlocal received
            message = await receive()
            if message.get("type") == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _too_large(limit, "the request body")
            return message

        await self.app(scope, bounded, send)


# The unread body is not drained: the connection closes after the refusal.
_CLOSE = {"Connection": "close"}
