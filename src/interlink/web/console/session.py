"""Sign-in and sign-out: the throttle, sign-in only from this console's own pages, and
sessions recorded in the store so that logging out ends them."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from interlink.web.console import throttle
from interlink.web.console.auth import COOKIE, close_session, open_session
from interlink.web.console.i18n import LANGUAGES, normalise, pick_language, translate
from interlink.web.console.render import (
    TEMPLATES,
    ConsoleRoute,
    set_session_cookie,
    state_of,
)

router = APIRouter(route_class=ConsoleRoute)


def _safe_next(target: str | None) -> str:
    """Only paths on this console: never another site."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _cross_site(request: Request) -> bool:
    """Was this form posted by another site's page? Browsers say so in ``Sec-Fetch-Site`` and
    ``Origin``; scripts that send neither (curl, tests) are not browsers being misled.

    Without it another site could sign a visitor in to an account of the attacker's (login
    CSRF), and whatever the visitor then typed would land in that account.
    """
    if request.headers.get("sec-fetch-site") == "cross-site":
        return True
    origin = request.headers.get("origin")
    if origin is None:
        return False
    # the host only: behind a proxy that ends TLS this process may see http for an https page
    return urlsplit(origin).netloc.lower() != request.headers.get("host", "").lower()


def _address(request: Request) -> str:
    # uvicorn puts the X-Forwarded-For address here only for proxies it trusts
    # (--forwarded-allow-ips, loopback by default), so a client cannot choose its own.
    return request.client.host if request.client else "unknown"


def _login_page(request: Request, error: str | None, status: int = 200) -> HTMLResponse:
    state = state_of(request)
    lang = pick_language(
        request.query_params.get("lang"), None, request.headers.get("accept-language")
    )
    html = TEMPLATES.get_template("login.html").render(
        t=lambda key, **v: translate(lang, key, **v),
        lang=lang,
        languages=LANGUAGES,
        session=None,
        ctx=None,
        capabilities={},
        msg=None,
        path="/login",
        error=error,
        no_users=not state.accounts.accounts,
        next=_safe_next(request.query_params.get("next")),
        chosen=normalise(request.query_params.get("lang")),
    )
    return HTMLResponse(html, status_code=status)


@router.get("/login")
def login_form(request: Request) -> Response:
    return _login_page(request, None)


@router.post("/login")
def login(
    request: Request,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    state = state_of(request)
    hub = state.hub
    lang = pick_language(
        request.query_params.get("lang"), None, request.headers.get("accept-language")
    )
    if _cross_site(request):
        return _login_page(request, translate(lang, "login.cross_site"), status=403)
    name, address, now = username.strip(), _address(request), hub.clock.now()
    wait = hub.store.read_sync(lambda conn: throttle.retry_after(conn, name, address, now))
    if wait:
        minutes = max(1, -(-wait // 60))
        page = _login_page(request, translate(lang, "login.throttled", minutes=minutes), 429)
        page.headers["Retry-After"] = str(wait)
        return page
    account = state.accounts.authenticate(name, password)
    if account is None:
        hub.store.write_sync(lambda conn: throttle.failed(conn, name, address, now))
        return _login_page(request, translate(lang, "login.bad"), status=401)
    hub.store.write_sync(lambda conn: throttle.succeeded(conn, name))
    # only a language chosen with ?lang= sticks; otherwise the browser's keeps deciding
    session = state.accounts.new_session(account, normalise(request.query_params.get("lang")))
    open_session(hub, account, session)
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_session_cookie(request, response, state.accounts.dump(session))
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    # No CSRF check needed to end one's own session; the worst a forged one does is sign out.
    state = state_of(request)
    session = state.accounts.load(request.cookies.get(COOKIE))
    if session is not None:
        close_session(state.hub, session)  # a copy of the cookie is worth nothing now
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
