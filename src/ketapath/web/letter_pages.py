"""Letters on the course page and their own page (``services.letters``): draft each kind from
the records, read a version as the patient or the GP will, download its PDF, sign it (a
physician), and see every version.

The PDF and the HTML document are served by the API (``/api/v1/letters/{id}/pdf``, ``/html``),
which the signed-in browser reaches with its session.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ketapath.api.deps import DatabaseDep
from ketapath.api.params import ClockDep, RecordId
from ketapath.domain.letters import LETTER_KINDS
from ketapath.knowledge.letters import letter_rules
from ketapath.reports.letters import body_of
from ketapath.services import letters
from ketapath.services.clock import ClinicClock
from ketapath.services.errors import Conflict
from ketapath.services.letters import DraftInput, LetterSummary
from ketapath.services.orders import OrderView
from ketapath.services.permissions import Actor
from ketapath.store.db import Database
from ketapath.web.pages import PageRoute, PageUser, posted_form, render
from ketapath.web.patient_pages import patient_context

router = APIRouter(route_class=PageRoute, include_in_schema=False)
HEADING = re.compile(r"<(/?)h([1-6])\b")


def order_letters(db: Database, actor: Actor, order: OrderView) -> dict[str, Any]:
    """What the course page shows of its letters: per kind the newest version and how many
    there are (None when the role may not read letters), and whether the user may draft."""
    if not actor.may("letters.read"):
        return {"letters": None}
    versions = letters.list_letters(db, actor, order.id)
    rules = letter_rules()
    kinds = []
    for kind in LETTER_KINDS:
        mine = [v for v in versions if v.kind == kind]
        newest_signed = next((v for v in mine if v.status == "signed"), None)
        kinds.append(
            {
                "kind": kind,
                "title": rules.kind_text(kind).title,
                "reader": rules.kind_text(kind).reader,
                "newest": mine[0] if mine else None,
                "signed": newest_signed,
                "count": len(mine),
            }
        )
    return {"letters": {"kinds": kinds, "may_draft": actor.may("letters.draft")}}


def nested(body: str) -> str:
    """A letter's body inside a page: its headings one level down (the page has its own h1
    and h2), so the page keeps one h1. What is stored and printed is unchanged."""
    return HEADING.sub(lambda m: f"<{m.group(1)}h{min(6, int(m.group(2)) + 1)}", body)


@router.post("/orders/{order_id}/letters", response_model=None)
async def draft_letter(
    request: Request, order_id: RecordId, actor: PageUser, db: DatabaseDep, clock: ClockDep
) -> Response:
    posted = await posted_form(request)
    return await run_in_threadpool(_draft, request, db, actor, order_id, clock, posted)


def _draft(
    request: Request,
    db: Database,
    actor: Actor,
    order_id: int,
    clock: ClinicClock,
    posted: dict[str, str],
) -> Response:
    kind = letters.refuse_unknown_kind(posted.get("kind", ""))
    view = letters.draft_letter(
        db,
        actor,
        order_id,
        DraftInput(kind=kind),
        clock=clock,
        settings=request.app.state.settings,
    )
    return RedirectResponse(f"/letters/{view.id}", status_code=303)


@router.get("/letters/{letter_id}", response_class=HTMLResponse)
def letter_page(
    request: Request, letter_id: RecordId, actor: PageUser, db: DatabaseDep
) -> HTMLResponse:
    return render_letter_page(request, db, actor, letter_id)


def render_letter_page(
    request: Request,
    db: Database,
    actor: Actor,
    letter_id: int,
    *,
    problem: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    """A version of a letter as it reads, its versions, and what the user may do with it."""
    letter = letters.get_letter(db, actor, letter_id)
    document = letters.letter_html(db, actor, letter_id)
    versions: list[LetterSummary] = []
    if letter.order_id is not None:
        versions = letters.list_letters(db, actor, letter.order_id, letter.kind)
    newest = versions[0] if versions else None
    context = patient_context(db, actor, letter.patient_id)
    context.update(
        {
            "letter": letter,
            "body": nested(body_of(document.content.decode("utf-8"))),
            "versions": versions,
            "newest": newest,
            "may_sign": actor.may("letters.sign") and letter.current and letter.status == "draft",
            "may_draft": actor.may("letters.draft") and letter.order_id is not None,
            "problem": problem,
        }
    )
    return render(request, "letter.html", context, status_code=status_code)


@router.post("/letters/{letter_id}/sign", response_model=None)
async def sign_letter(
    request: Request, letter_id: RecordId, actor: PageUser, db: DatabaseDep, clock: ClockDep
) -> Response:
    await posted_form(request)
    return await run_in_threadpool(_sign, request, db, actor, letter_id, clock)


def _sign(
    request: Request, db: Database, actor: Actor, letter_id: int, clock: ClinicClock
) -> Response:
    try:
        signed = letters.sign_letter(db, actor, letter_id, clock=clock)
    except Conflict as error:
        return render_letter_page(
            request, db, actor, letter_id, problem=error.message, status_code=409
        )
    return RedirectResponse(f"/letters/{signed.id}", status_code=303)
