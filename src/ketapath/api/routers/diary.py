"""The patient diary (issue 12, item 2): the clinic's links and reading of a course's diary,
and the patient's side (open a link once, write a day) without an account.

The patient's requests carry the diary session from ``POST /diary/open``: the cookie it sets
(HttpOnly, SameSite=Strict, Secure over HTTPS) or the ``X-Diary-Session`` header.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Cookie, Header, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from ketapath.api.deps import CurrentUser, DatabaseDep, SettingsDep
from ketapath.api.errors import SIGNED_IN, responses
from ketapath.api.params import ClockDep, RecordId
from ketapath.config import Settings
from ketapath.services import diary
from ketapath.services.diary import (
    DiaryEntryInput,
    DiaryEntryView,
    DiaryLinkView,
    DiaryView,
    IssuedDiaryLink,
    LinkRequest,
    OpenedDiary,
    PatientDiary,
)

router = APIRouter(tags=["patient diary"])
SESSION_HEADER = "X-Diary-Session"
COOKIE = "ketapath_diary"
SESSION_LENGTH = 200


class OpenRequest(BaseModel):
    """The link's secret: the last part of the diary address."""

    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=SESSION_LENGTH)


class OpenedBody(BaseModel):
    """The diary session: also set as an HttpOnly cookie; send it back as the cookie or as
    the X-Diary-Session header."""

    session: str
    expires_at: datetime


def client_address(request: Request) -> str:
    """The caller's address, for counting refused openings (the proxy's when behind one)."""
    return request.client.host if request.client is not None else ""


def set_diary_cookie(
    response: Response, request: Request, settings: Settings, opened: OpenedDiary
) -> None:
    """The diary session in an HttpOnly, SameSite=Strict cookie until the link expires."""
    seconds = int((opened.expires_at - datetime.now(opened.expires_at.tzinfo)).total_seconds())
    response.set_cookie(
        COOKIE,
        opened.session,
        max_age=max(seconds, 0),
        httponly=True,
        secure=settings.cookie_secure or request.url.scheme == "https",
        samesite="strict",
        path="/",
    )


def diary_session(request: Request, header: str | None) -> str:
    """The diary session from the header, else from the cookie ('' when neither)."""
    return (header or request.cookies.get(COOKIE) or "")[:SESSION_LENGTH]


SessionHeader = Annotated[
    str | None,
    Header(
        alias=SESSION_HEADER,
        max_length=SESSION_LENGTH,
        description="The diary session (instead of the cookie).",
    ),
]
SessionCookie = Annotated[
    str | None,
    Cookie(alias=COOKIE, max_length=SESSION_LENGTH, description="The diary session."),
]


# ------------------------------------------------------------------ the clinic


@router.post(
    "/orders/{order_id}/diary-links",
    response_model=IssuedDiaryLink,
    status_code=status.HTTP_201_CREATED,
    summary="Give the patient a single-use diary link for this course (the address, once)",
    responses={**SIGNED_IN, **responses(400, 404, 409, 422)},
)
def create_link(
    order_id: RecordId,
    body: LinkRequest,
    actor: CurrentUser,
    db: DatabaseDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> IssuedDiaryLink:
    return diary.create_link(
        db,
        actor,
        order_id,
        days_valid=body.days_valid,
        send_to=body.send_to,
        clock=clock,
        settings=settings,
    )


@router.get(
    "/orders/{order_id}/diary-links",
    response_model=list[DiaryLinkView],
    summary="The course's diary links and their state (never their address)",
    responses={**SIGNED_IN, **responses(404)},
)
def list_links(
    order_id: RecordId, actor: CurrentUser, db: DatabaseDep, clock: ClockDep
) -> list[DiaryLinkView]:
    return diary.links_for_order(db, actor, order_id, clock=clock)


@router.post(
    "/diary-links/{link_id}/revoke",
    response_model=DiaryLinkView,
    summary="Withdraw a diary link: it no longer opens, and its diary stops",
    responses={**SIGNED_IN, **responses(404, 409)},
)
def revoke_link(
    link_id: RecordId, actor: CurrentUser, db: DatabaseDep, clock: ClockDep
) -> DiaryLinkView:
    return diary.revoke_link(db, actor, link_id, clock=clock)


@router.get(
    "/orders/{order_id}/diary",
    response_model=DiaryView,
    summary="The course's diary: the latest entry of each day, unrecognised medicines flagged",
    responses={**SIGNED_IN, **responses(404)},
)
def read_diary(order_id: RecordId, actor: CurrentUser, db: DatabaseDep) -> DiaryView:
    return diary.diary_for_order(db, actor, order_id)


# ------------------------------------------------------------------ the patient


@router.post(
    "/diary/open",
    response_model=OpenedBody,
    summary="Open a diary link (once): the diary session, also set as a cookie",
    responses=responses(400, 410, 422, 429),
)
async def open_link(
    body: OpenRequest,
    request: Request,
    response: Response,
    db: DatabaseDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> OpenedBody:
    opened = await run_in_threadpool(
        diary.open_link,
        db,
        body.token,
        client=client_address(request),
        clock=clock,
        settings=settings,
    )
    set_diary_cookie(response, request, settings, opened)
    return OpenedBody(session=opened.session, expires_at=opened.expires_at)


@router.post(
    "/diary/entries",
    response_model=DiaryEntryView,
    status_code=status.HTTP_201_CREATED,
    summary="Write one day of the diary (a second entry for a day amends the first)",
    responses=responses(400, 401, 409, 410, 422, 429),
)
def record_entry(
    body: DiaryEntryInput,
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    clock: ClockDep,
    x_diary_session: SessionHeader = None,
    ketapath_diary: SessionCookie = None,
) -> DiaryEntryView:
    secret = diary_session(request, x_diary_session)
    return diary.record_entry(db, secret, body, clock=clock, settings=settings)


@router.get(
    "/diary/entries",
    response_model=PatientDiary,
    summary="The patient's own diary: the days it takes and the last week's entries",
    responses=responses(401, 410, 422),
)
def own_diary(
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    clock: ClockDep,
    x_diary_session: SessionHeader = None,
    ketapath_diary: SessionCookie = None,
) -> PatientDiary:
    secret = diary_session(request, x_diary_session)
    return diary.patient_diary(db, secret, clock=clock)
