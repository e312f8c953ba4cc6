"""Sign-in and sign-out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from interlink.web.console.auth import COOKIE
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
    account = state.accounts.authenticate(username.strip(), password)
    if account is None:
        lang = pick_language(None, None, request.headers.get("accept-language"))
        return _login_page(request, translate(lang, "login.bad"), status=401)
    # only a language chosen with ?lang= sticks; otherwise the browser's keeps deciding
    session = state.accounts.new_session(account, normalise(request.query_params.get("lang")))
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_session_cookie(request, response, state.accounts.dump(session))
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    # No CSRF check needed to end one's own session; the worst a forged one does is sign out.
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
