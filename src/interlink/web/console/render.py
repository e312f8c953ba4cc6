"""How every console page is built: the per-app console state, the signed-in user as a
dependency, CSRF on every POST, Jinja2 rendering with the string catalogue, and HTML error
pages (the API's JSON error handlers stay as they are: console routes catch their own).

A page module defines ``router = APIRouter(route_class=ConsoleRoute)`` and handlers such as::

    @router.get("/flows/{name}")
    def flow_page(request: Request, ctx: Ctx = Depends(viewer)) -> Response:
        return ctx.render("flow.html", flow=..., ...)

    @router.post("/flows/{name}/pause")
    def pause(request: Request, ctx: Ctx = Depends(operator_form)) -> Response:
        ...
        return ctx.redirect(f"/flows/{name}", msg=...)
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape

from interlink.errors import InterlinkError
from interlink.model import DeadReason, HoldReason, Status
from interlink.service import Hub
from interlink.web.console.auth import COOKIE, Accounts, Session, csrf_ok, session_is_open
from interlink.web.console.i18n import LANGUAGES, normalise, pick_language, term, translate

HERE = Path(__file__).parent
FLASH_KEYS = {
    "repush.done",
    "repush.one_done",
    "paused.done",
    "resumed.done",
    "maintenance.announced",
    "maintenance.cancelled",
}
FLASH_VALUES = ("count", "id", "flow", "state")
# A number the console put in a redirect: digits only, and not a page of them.
_NUMBER = re.compile(r"[0-9]{1,19}")
_REASONS = {r.value for r in HoldReason} | {r.value for r in DeadReason}
TEMPLATES = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html", "svg"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


class ConsoleState:
    """What the console keeps per app: its accounts and a few caches."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.accounts = Accounts.from_users(hub.topology.users)
        self.svg_cache: dict[str, str] = {}
        # (flow, hour) → attempts by outcome, for hours that can no longer change
        self.hours: dict[tuple[str, datetime], dict[str, int]] = {}
        self.live: tuple[float, dict[str, Any]] | None = None


_STATE_LOCK = threading.Lock()


def state_of(request: Request) -> ConsoleState:
    """The app's console state, made on the first request (one only, even when the first
    requests come together: a second random session key would sign out the first users)."""
    state: ConsoleState | None = getattr(request.app.state, "console", None)
    if state is None:
        with _STATE_LOCK:
            state = getattr(request.app.state, "console", None)
            if state is None:
                state = ConsoleState(request.app.state.hub)
                request.app.state.console = state
    return state


def offset(tz: tzinfo, at: datetime) -> str:
    """``+08:00``: the zone's offset from UTC at ``at``."""
    raw = at.astimezone(tz).strftime("%z") or "+0000"
    return f"{raw[:3]}:{raw[3:5]}"


def local_time(value: datetime | str | None, tz: tzinfo) -> str:
    """``2026-01-31 09:00:00 +08:00``: every time the console shows carries its zone, so a
    reader in another zone, or a screenshot in a chat, is not read an hour wrong."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    return f"{value.astimezone(tz).strftime('%Y-%m-%d %H:%M:%S')} {offset(tz, value)}"


def zone_name(tz: tzinfo) -> str:
    return str(getattr(tz, "key", None) or tz)


def zone_note(tz: tzinfo, now: datetime, lang: str) -> str:
    return translate(lang, "tz.note", zone=zone_name(tz), offset=offset(tz, now))


def _value_text(value: Any, yes_no: tuple[str, str], depth: int = 0) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return yes_no[0] if value else yes_no[1]
    if isinstance(value, dict):
        if depth:
            return json.dumps(value, ensure_ascii=False, default=str)
        pairs = (
            f"{k}: {_value_text(v, yes_no, 1)}" for k, v in value.items() if v not in (None, "")
        )
        return ", ".join(pairs)
    if isinstance(value, list | tuple):
        shown = [_value_text(v, yes_no, 1) for v in value[:10]]
        return ", ".join(shown) + (f", … ({len(value)})" if len(value) > 10 else "")
    return str(value)


def details(detail: Any, yes_no: tuple[str, str] = ("yes", "no")) -> list[tuple[str, str]]:
    """An audit or event detail as ``key: value`` lines a person reads, not a dict dump."""
    if not isinstance(detail, dict):
        return [("", _value_text(detail, yes_no))] if detail not in (None, "") else []
    return [
        (str(k), _value_text(v, yes_no)) for k, v in detail.items() if v not in (None, "", [], {})
    ]


class Redirect(Exception):
    def __init__(self, url: str) -> None:
        self.url = url


class Refused(Exception):
    """A signed-in user may not do this (403)."""

    def __init__(self, message_key: str, **values: object) -> None:
        self.message_key = message_key
        self.values = values


@dataclass
class Ctx:
    """One request to the console: the hub, who asks, in which language."""

    request: Request
    hub: Hub
    session: Session
    lang: str
    state: ConsoleState
    new_cookie: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def t(self, key: str, **values: object) -> str:
        return translate(self.lang, key, **values)

    def w(self, group: str, code: str | None) -> str:
        """The glossary's word for a status, reason, role, severity, state or kind."""
        return term(self.lang, group, code)

    @property
    def actor(self) -> str:
        return self.session.actor

    def fmt(self, value: datetime | str | None) -> str:
        """A time in the topology's time zone, to the second, with its UTC offset."""
        return local_time(value, self.hub.topology.tz)

    def require(self, role: str) -> None:
        if not self.session.may(role):
            raise Refused("error.forbidden", role=self.session.role, needed=role)

    def render(self, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
        html = TEMPLATES.get_template(template).render(
            ctx=self,
            t=self.t,
            w=self.w,
            fmt=self.fmt,
            zone=zone_note(self.hub.topology.tz, self.hub.clock.now(), self.lang),
            zone_label=zone_name(self.hub.topology.tz),
            details=lambda detail: details(detail, (self.t("yes"), self.t("no"))),
            session=self.session,
            lang=self.lang,
            languages=LANGUAGES,
            capabilities=self.hub.capabilities,
            msg=self.flash(),
            path=self.request.url.path,
            tojson=lambda v: json.dumps(v, indent=2, ensure_ascii=False, default=str),
            **values,
        )
        return HTMLResponse(html, status_code=status_code)

    def flash(self) -> str | None:
        """The message a redirect after an action asked for (``?msg=KEY&count=..``): only
        catalogue keys filled with numbers, flow names and delivery states, so a link cannot
        put words of its own on the page ("call this number"). Anything else shows nothing."""
        query = self.request.query_params
        key = query.get("msg")
        if not key or key not in FLASH_KEYS:
            return None
        values = {k: query.get(k, "") for k in FLASH_VALUES}
        if not all(self._flash_value(k, v) for k, v in values.items()):
            return None
        return self.t(key, **values)

    def _flash_value(self, name: str, value: str) -> bool:
        if value == "":
            return True  # the message does not use it
        if name in ("count", "id"):
            return _NUMBER.fullmatch(value) is not None
        if name == "flow":
            return value in self.hub.topology.flows
        status, _, reason = value.partition(": ")  # Delivery.state: "held: paused"
        return status in {s.value for s in Status} and (not reason or reason in _REASONS)

    def redirect(self, url: str, **query: Any) -> RedirectResponse:
        if query:
            url = f"{url}?{urlencode({k: v for k, v in query.items() if v is not None})}"
        return RedirectResponse(url, status_code=303)


def _language(request: Request, session: Session | None) -> str:
    return pick_language(
        request.query_params.get("lang"),
        session.lang if session else None,
        request.headers.get("accept-language"),
    )


def _ctx(request: Request) -> Ctx:
    state = state_of(request)
    session = state.accounts.load(request.cookies.get(COOKIE))
    if session is not None and not session_is_open(state.hub, state.accounts, session):
        session = None  # logged out, expired, or the password changed since
    if session is None:
        target = request.url.path
        raise Redirect("/login" + (f"?{urlencode({'next': target})}" if target != "/" else ""))
    ctx = Ctx(request, state.hub, session, _language(request, session), state)
    wanted = normalise(request.query_params.get("lang"))
    if wanted and wanted != session.lang:
        ctx.session = dataclasses.replace(session, lang=wanted)
        ctx.new_cookie = state.accounts.dump(ctx.session)
    request.state.console_ctx = ctx
    return ctx


def viewer(request: Request) -> Ctx:
    return _ctx(request)


async def _form_ctx(request: Request, role: str) -> Ctx:
    ctx = _ctx(request)
    form = await request.form()
    token = form.get("csrf")
    if not csrf_ok(ctx.session, token if isinstance(token, str) else None):
        raise Refused("error.csrf")
    ctx.require(role)
    return ctx


async def viewer_form(request: Request) -> Ctx:
    """A POST any signed-in user may make (a check that changes nothing), CSRF-checked."""
    return await _form_ctx(request, "viewer")


async def operator_form(request: Request) -> Ctx:
    """A state-changing POST: operator or admin, CSRF-checked."""
    return await _form_ctx(request, "operator")


async def admin_form(request: Request) -> Ctx:
    return await _form_ctx(request, "admin")


def set_session_cookie(request: Request, response: Response, value: str) -> None:
    # Secure when the topology says the console is reached over https (behind a proxy that
    # ends TLS this process sees http), or when this request came over https itself.
    secure = state_of(request).hub.topology.secure_cookies or request.url.scheme == "https"
    response.set_cookie(COOKIE, value, httponly=True, samesite="lax", secure=secure, path="/")


def error_page(
    request: Request, status: int, message: str, lang: str | None = None
) -> HTMLResponse:
    ctx: Ctx | None = getattr(request.state, "console_ctx", None)
    lang = lang or (ctx.lang if ctx else _language(request, None))
    html = TEMPLATES.get_template("error.html").render(
        ctx=ctx,
        t=lambda key, **v: translate(lang, key, **v),
        w=lambda group, code: term(lang, group, code),
        lang=lang,
        languages=LANGUAGES,
        session=ctx.session if ctx else None,
        capabilities=ctx.hub.capabilities if ctx else {},
        message=message,
        status=status,
        path=request.url.path,
        msg=None,
        zone=_zone_of(request, lang),
    )
    return HTMLResponse(html, status_code=status)


def _zone_of(request: Request, lang: str) -> str:
    hub: Hub | None = getattr(request.app.state, "hub", None)
    return zone_note(hub.topology.tz, hub.clock.now(), lang) if hub is not None else ""


def words(request: Request, key: str, **values: object) -> str:
    """A catalogue string in the language of the request (its session's, when signed in)."""
    ctx: Ctx | None = getattr(request.state, "console_ctx", None)
    return translate(ctx.lang if ctx else _language(request, None), key, **values)


def _bad_address(request: Request, e: RequestValidationError) -> str:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in problem['loc'][1:])}: {problem['msg']}"
        for problem in e.errors()
    )
    return words(request, "error.bad_address", problems=problems)


class ConsoleRoute(APIRoute):
    """Turns sign-in redirects, refusals and service errors into HTML, and re-issues the
    session cookie when the language changed."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                response = await original(request)
            except Redirect as r:
                return RedirectResponse(r.url, status_code=303)
            except Refused as r:
                ctx: Ctx | None = getattr(request.state, "console_ctx", None)
                lang = ctx.lang if ctx else "en"
                return error_page(request, 403, translate(lang, r.message_key, **r.values))
            except InterlinkError as e:
                return error_page(request, e.http_status, str(e))
            except RequestValidationError as e:
                # /deliveries/abc: a person typed or pasted an address; answer a page, not JSON.
                return error_page(request, 404, _bad_address(request, e))
            except OverflowError:
                return error_page(request, 400, words(request, "error.out_of_range"))
            finally:
                await request.close()  # the form (and its spooled uploads) read for CSRF
            ctx = getattr(request.state, "console_ctx", None)
            if ctx is not None and ctx.new_cookie:
                set_session_cookie(request, response, ctx.new_cookie)
            return response

        return handler
