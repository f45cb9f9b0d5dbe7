"""Letters after a course (issue 12 item 6): the discharge summary, the GP letter and the
patient information sheet, as versions.

- ``POST /orders/{order_id}/letters``: draft the next version of a kind of letter from the
  records as they are now (physicians, nurses);
- ``GET /orders/{order_id}/letters``: every version of the course's letters, newest first;
- ``GET /letters/{letter_id}``: one version with its facts;
- ``POST /letters/{letter_id}/sign``: sign the newest version (physicians): a new version;
- ``GET /letters/{letter_id}/html`` and ``/pdf``: the version's documents as stored.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from ketapath.api.deps import CurrentUser, DatabaseDep, SettingsDep
from ketapath.api.errors import SIGNED_IN, responses
from ketapath.api.params import ClockDep, RecordId
from ketapath.domain.letters import LetterKind
from ketapath.services import letters
from ketapath.services.letters import DraftInput, LetterDocument, LetterSummary, LetterView

router = APIRouter(tags=["letters"], responses=SIGNED_IN)


def _download(media_type: str, what: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "content": {media_type: {"schema": {"type": "string"}}},
            "description": f"The version's {what}, as stored when it was made.",
        }
    }


def _answer(document: LetterDocument, disposition: str) -> Response:
    return Response(
        document.content,
        media_type=document.media_type,
        headers={"Content-Disposition": f'{disposition}; filename="{document.filename}"'},
    )


@router.post(
    "/orders/{order_id}/letters",
    response_model=LetterView,
    status_code=status.HTTP_201_CREATED,
    responses=responses(400, 404, 409, 422),
    summary="Draft the next version of a letter for the course, from the records now",
)
def draft_letter(
    order_id: RecordId,
    body: DraftInput,
    actor: CurrentUser,
    db: DatabaseDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> LetterView:
    return letters.draft_letter(db, actor, order_id, body, clock=clock, settings=settings)


@router.get(
    "/orders/{order_id}/letters",
    response_model=list[LetterSummary],
    responses=responses(404, 422),
    summary="Every version of the course's letters (of one kind), newest first",
)
def list_letters(
    order_id: RecordId,
    actor: CurrentUser,
    db: DatabaseDep,
    kind: Annotated[LetterKind | None, Query(description="Only this kind of letter.")] = None,
) -> list[LetterSummary]:
    return letters.list_letters(db, actor, order_id, kind)


@router.get(
    "/letters/{letter_id}",
    response_model=LetterView,
    responses=responses(404, 422),
    summary="One version of a letter with the facts it shows",
)
def get_letter(letter_id: RecordId, actor: CurrentUser, db: DatabaseDep) -> LetterView:
    return letters.get_letter(db, actor, letter_id)


@router.post(
    "/letters/{letter_id}/sign",
    response_model=LetterView,
    status_code=status.HTTP_201_CREATED,
    responses=responses(404, 409, 422),
    summary="Sign the newest version (a physician): a new version, signed",
)
def sign_letter(
    letter_id: RecordId, actor: CurrentUser, db: DatabaseDep, clock: ClockDep
) -> LetterView:
    return letters.sign_letter(db, actor, letter_id, clock=clock)


@router.get(
    "/letters/{letter_id}/html",
    response_class=Response,
    responses={**_download("text/html", "HTML document"), **responses(404, 422)},
    summary="The version as an HTML document",
)
def letter_html(letter_id: RecordId, actor: CurrentUser, db: DatabaseDep) -> Response:
    return _answer(letters.letter_html(db, actor, letter_id), "inline")


@router.get(
    "/letters/{letter_id}/pdf",
    response_class=Response,
    responses={**_download("application/pdf", "PDF"), **responses(404, 422)},
    summary="The version as a PDF",
)
def letter_pdf(letter_id: RecordId, actor: CurrentUser, db: DatabaseDep) -> Response:
    return _answer(letters.letter_pdf(db, actor, letter_id), "attachment")
