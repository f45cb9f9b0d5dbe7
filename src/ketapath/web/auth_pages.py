"""Sign-in and sign-out pages (cookie session; the sign-in form uses a double-submit token)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from ketapath.api.deps import (
    DatabaseDep,
    SettingsDep,
    anonymous_csrf_token,
    clear_session_cookie,
    optional_user,
    require_csrf,
    session_token,
    set_session_cookie,
)
from ketapath.services import auth
from ketapath.services.errors import AuthenticationFailed
from ketapath.services.permissions import Actor
from ketapath.web.pages import PageRoute, PageUser, home_for, render, safe_next

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _sign_in_page(
    request: Request,
    settings: SettingsDep,
    *,
    next_path: str,
    username: str = "",
    error: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    cookie_carrier = Response()
    request.state.anonymous_csrf = anonymous_csrf_token(request, cookie_carrier, settings)
    page = render(
        request,
        "sign_in.html",
        {"next_path": next_path, "username": username, "error": error},
        status_code=status_code,
    )
    for name, value in cookie_carrier.raw_headers:
        if name == b"set-cookie":
            page.raw_headers.append((name, value))
    return page


@router.get("/", response_model=None)
async def home(
    actor: Annotated[Actor | None, Depends(optional_user)],
) -> RedirectResponse:
    return RedirectResponse(home_for(actor) if actor else "/login", status_code=303)


@router.get("/login", response_class=HTMLResponse)
async def sign_in_form(request: Request, settings: SettingsDep, next: str = "") -> HTMLResponse:
    return _sign_in_page(request, settings, next_path=safe_next(next, ""))


@router.post("/login", response_model=None, dependencies=[Depends(require_csrf)])
async def sign_in(
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    username = username.strip().lower()
    next_path = safe_next(next, "")
    missing = "username" if not username else "password" if not password else ""
    if missing:
        label = "User name" if missing == "username" else "Password"
        return _sign_in_page(
            request,
            settings,
            next_path=next_path,
            username=username,
            error=f"{label}: please fill this in.",
            status_code=422,
        )
    try:
        issued = await run_in_threadpool(auth.start_session, db, settings, username, password)
    except AuthenticationFailed as error:
        return _sign_in_page(
            request,
            settings,
            next_path=next_path,
            username=username,
            error=error.message,
            status_code=error.status_code,
        )
    response = RedirectResponse(next_path or home_for(issued.actor), status_code=303)
    set_session_cookie(response, settings, issued)
    return response


@router.post("/logout", response_model=None)
async def sign_out(
    request: Request, actor: PageUser, db: DatabaseDep, settings: SettingsDep
) -> Response:
    token = session_token(request, settings)
    if token:
        await run_in_threadpool(auth.revoke_token, db, token)
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response, settings)
    return response
