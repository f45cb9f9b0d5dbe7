"""Sign-in: bearer tokens for API clients, cookie sessions for browsers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ketapath.api.deps import (
    CurrentUser,
    DatabaseDep,
    SettingsDep,
    bearer_scheme,
    clear_session_cookie,
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


@router.post("/session", response_model=SessionOut, summary="Sign in a browser (cookie)")
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
