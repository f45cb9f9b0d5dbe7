"""Sign-in and sign-out pages (cookie session; the sign-in form uses a double-submit token)."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
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
from ketapath.services.errors import AuthenticationFailed, PermissionDenied
from ketapath.services.permissions import Actor
from ketapath.web.forms import FormErrors
from ketapath.web.pages import PageRoute, PageUser, home_for, posted_form, render, safe_next

router = APIRouter(route_class=PageRoute, include_in_schema=False)


SIGN_IN_LABELS = {"username": "User name", "password": "Password"}


def _sign_in_page(
    request: Request,
    settings: SettingsDep,
    *,
    next_path: str,
    username: str = "",
    error: str = "",
    errors: FormErrors | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    cookie_carrier = Response()
    request.state.anonymous_csrf = anonymous_csrf_token(request, cookie_carrier, settings)
    page = render(
        request,
        "sign_in.html",
        {
            "next_path": next_path,
            "username": username,
            "error": error,
            "errors": errors,
            "limits": {"username": auth.USERNAME_LENGTH, "password": auth.PASSWORD_LENGTH},
        },
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


@router.post("/login", response_model=None)
async def sign_in(request: Request, db: DatabaseDep, settings: SettingsDep) -> Response:
    """Sign in from the form. Its double-submit token is checked here, so that a form that
    expired is shown again, fresh, with the user name kept (login CSRF stays closed: nothing
    is signed in without the token)."""
    posted = await posted_form(request)
    username = posted.get("username", "").strip().lower()
    next_path = safe_next(posted.get("next", "")[:2000], "")
    page = partial(_sign_in_page, request, settings, next_path=next_path, username=username)
    try:
        await require_csrf(request, settings)
    except PermissionDenied:
        return page(
            error="The sign-in form had expired (it was opened before a restart or in another "
            "window), so nothing was sent. Enter your password again and sign in.",
            status_code=403,
        )
    errors = FormErrors(SIGN_IN_LABELS)
    errors.require(posted, "username", "password")
    errors.limit(posted, "username", auth.USERNAME_LENGTH)
    errors.limit(posted, "password", auth.PASSWORD_LENGTH)
    if errors:
        return page(errors=errors, status_code=422)
    try:
        issued = await run_in_threadpool(
            auth.start_session, db, settings, username, posted["password"]
        )
    except AuthenticationFailed as error:
        return page(error=error.message, status_code=error.status_code)
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
