"""Headers every answer carries, console page or API call: what the browser may load, run and
frame, and what it may guess.

- ``Content-Security-Policy``: scripts, styles, images, fonts and requests only from this
  origin (images also as ``data:``, which Swagger UI's stylesheet uses); no inline script or
  style, no plugins, no ``<base>``, forms only to us, and no framing by any site. The console's
  templates keep every script and style in ``/console/static``; a page that needs more (ReDoc)
  sets its own policy, which this middleware leaves as it is.
- ``X-Frame-Options: DENY``: the same refusal to be framed, for browsers without CSP 3.
- ``X-Content-Type-Options: nosniff``: an attachment served as text is never run as script.
- ``Referrer-Policy: same-origin``: no console URL (a document id, a business key in a
  filter) leaks to another site through a link. Not ``no-referrer``: under it browsers send
  ``Origin: null`` with the console's own forms, and sign-in checks the origin.
- ``Cross-Origin-Opener-Policy: same-origin``: a page we open cannot reach back into ours.
- ``Strict-Transport-Security``, only with ``secure_cookies: true`` (the console is reached
  over https): browsers then never try plain http.

A pure ASGI middleware: it adds the headers to the response start and nothing else, so the
intake path pays a few microseconds, not a wrapped request.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)
HSTS = ("Strict-Transport-Security", "max-age=31536000")


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, https: bool = False) -> None:
        self.app = app
        # Encoded once: every answer, intake's included, gets them.
        self.headers = [
            (name.lower().encode(), value.encode())
            for name, value in HEADERS + ((HSTS,) if https else ())
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                # a page's own header, stricter or looser, stays
                headers.extend(h for h in self.headers if h[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
