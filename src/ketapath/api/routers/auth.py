"""Sign-in: bearer tokens for API clients, cookie sessions for browsers.

A browser signs in in two steps, so that another site cannot sign it in as someone else
(login CSRF): ``GET /auth/csrf`` sets a token cookie and returns the token; ``POST
/auth/session`` must send it back (``X-CSRF-Token`` header or ``csrf_token`` form field).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ketapath.api.deps import (
    CSRF_FIELD,
    CSRF_HEADER,
    CurrentUser,
    DatabaseDep,
    SettingsDep,
    anonymous_csrf_token,
    bearer_scheme,
    clear_session_cookie,
    require_csrf,
    session_token,
    set_session_cookie,
)
from ketapath.services import auth

router = APIRouter(prefix="/auth", tags=["auth"])


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: datetime
    username: str
    role: str


class SessionOut(BaseModel):
    csrf_token: str
    expires_at: datetime
    username: str
    role: str


class CsrfOut(BaseModel):
    csrf_token: str


class Me(BaseModel):
    username: str
    role: str
    user_id: int | None


@router.post("/token", response_model=TokenOut, summary="Sign in and get a bearer token")
async def issue_token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    db: DatabaseDep,
    settings: SettingsDep,
) -> TokenOut:
    issued = await run_in_threadpool(
        auth.issue_api_token, db, settings, form.username, form.password
    )
    return TokenOut(
        access_token=issued.token,
        expires_at=issued.expires_at,
        username=issued.actor.username,
        role=issued.actor.role,
    )


@router.delete("/token", status_code=status.HTTP_204_NO_CONTENT, summary="Revoke this token")
async def revoke_token(
    actor: CurrentUser,
    db: DatabaseDep,
    token: Annotated[str | None, Depends(bearer_scheme)],
) -> None:
    if token:
        await run_in_threadpool(auth.revoke_token, db, token)


@router.get("/csrf", response_model=CsrfOut, summary="Get the token for signing a browser in")
async def sign_in_token(request: Request, response: Response, settings: SettingsDep) -> CsrfOut:
    """Sets the ``ketapath_csrf`` cookie (HttpOnly, SameSite=Lax) and returns its value.

    Send it back as the ``X-CSRF-Token`` header (or ``csrf_token`` form field) of
    ``POST /auth/session``; without it, or with another value, signing in is refused (403).
    """
    return CsrfOut(csrf_token=anonymous_csrf_token(request, response, settings))


@router.post(
    "/session",
    response_model=SessionOut,
    summary="Sign in a browser (cookie)",
    dependencies=[Depends(require_csrf)],
    description=(
        f"Needs the token from `GET /auth/csrf`, as the `{CSRF_HEADER}` header or the "
        f"`{CSRF_FIELD}` form field, and that request's cookie (login CSRF protection). "
        "Sets the session cookie and returns the session's own CSRF token for later writes."
    ),
)
async def start_session(
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    response: Response,
    db: DatabaseDep,
    settings: SettingsDep,
) -> SessionOut:
    issued = await run_in_threadpool(auth.start_session, db, settings, username, password)
    set_session_cookie(response, settings, issued)
    assert issued.csrf_token is not None
    return SessionOut(
        csrf_token=issued.csrf_token,
        expires_at=issued.expires_at,
        username=issued.actor.username,
        role=issued.actor.role,
    )


@router.delete("/session", status_code=status.HTTP_204_NO_CONTENT, summary="Sign out a browser")
async def end_session(
    actor: CurrentUser, request: Request, response: Response, db: DatabaseDep, settings: SettingsDep
) -> None:
    token = session_token(request, settings)
    if token:
        await run_in_threadpool(auth.revoke_token, db, token)
    clear_session_cookie(response, settings)


@router.get("/me", response_model=Me, summary="Who am I signed in as")
def me(actor: CurrentUser) -> Me:
    return Me(username=actor.username, role=actor.role, user_id=actor.user_id)
