"""The patient diary's pages (issue 12, item 2).

The patient's side, without an account and phone-sized: ``/diary/start/{token}`` shows a
button ("Open my diary") whose POST opens the single-use link, so that a messaging app that
fetches the link for a preview does not use it up; the POST sets the diary cookie (HttpOnly,
SameSite=Strict, Secure over HTTPS) and leads to ``/diary``: today's form and the last week's
entries. A used, expired or withdrawn link gets a page that says what to do.

The clinic's side is a card on the order page (``diary_card``): a link is made there and its
address shown once, links are withdrawn, and the entries are read.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ketapath.api.deps import DatabaseDep, SettingsDep
from ketapath.api.params import ClockDep, RecordId, record_id
from ketapath.api.routers.diary import COOKIE, client_address, set_diary_cookie
from ketapath.services import diary
from ketapath.services.clock import ClinicClock
from ketapath.services.diary import DiaryEntryInput, PatientDiary
from ketapath.services.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidInput,
    LinkRefused,
    ServiceError,
    TooManyRequests,
)
from ketapath.services.permissions import Actor
from ketapath.store.db import Database
from ketapath.web.diary_card import DIARY_DOSE_ROWS, LINK_FIELDS, link_errors
from ketapath.web.forms import FormErrors, validated
from ketapath.web.order_pages import render_order_page
from ketapath.web.pages import PageRoute, PageUser, posted_form, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

Token = Annotated[str, Path(min_length=1, max_length=200)]
LINK_DOSE_PARTS = ("name", "dose", "unit", "times")

ENTRY_LABELS: dict[str, str] = {
    "day": "Day",
    "pain_nrs": "Pain today",
    "sleep_quality": "Sleep last night",
    "side_effects": "Side effects",
    "other_effect": "The other side effect",
    **{
        f"dose_{n}_{part}": f"{label} (medicine {n})"
        for n in range(1, DIARY_DOSE_ROWS + 1)
        for part, label in (
            ("name", "Medicine"),
            ("dose", "Dose"),
            ("unit", "Unit"),
            ("times", "Times taken"),
        )
    },
    "note": "Anything else",
}


# ------------------------------------------------------------------ opening the link


@router.get("/diary/start/{token}", response_class=HTMLResponse)
def start_page(request: Request, token: Token) -> HTMLResponse:
    """The link's landing page: nothing is used until the button is pressed."""
    return render(request, "diary_start.html", {"token": token})


@router.post("/diary/start/{token}", response_model=None)
async def open_diary(
    request: Request, token: Token, db: DatabaseDep, settings: SettingsDep, clock: ClockDep
) -> Response:
    try:
        opened = await run_in_threadpool(
            diary.open_link,
            db,
            token,
            client=client_address(request),
            clock=clock,
            settings=settings,
        )
    except (LinkRefused, TooManyRequests) as error:
        return refused_page(request, error)
    response = RedirectResponse("/diary", status_code=303)
    set_diary_cookie(response, request, settings, opened)
    return response


def refused_page(request: Request, error: ServiceError) -> HTMLResponse:
    """A link or diary that cannot be used, with what to do, in words."""
    return render(
        request,
        "diary_refused.html",
        {"message": error.message, "status_code": error.status_code},
        status_code=error.status_code,
    )


# ------------------------------------------------------------------ the diary


def _diary_page(
    request: Request,
    own: PatientDiary,
    *,
    values: dict[str, Any] | None = None,
    errors: FormErrors | None = None,
    saved: bool = False,
    status_code: int = 200,
) -> HTMLResponse:
    if values is None:
        values = _values_of(own)
    return render(
        request,
        "diary.html",
        {
            "own": own,
            "values": values,
            "errors": errors,
            "saved": saved,
            "effects": diary.side_effect_names(),
            "dose_rows": range(1, DIARY_DOSE_ROWS + 1),
            "labels": ENTRY_LABELS,
            "note_length": diary.NOTE_LENGTH,
            "pain_anchors": _pain_anchors(),
            "description_length": diary.DESCRIPTION_LENGTH,
        },
        status_code=status_code,
    )


def _pain_anchors() -> dict[int, str]:
    """The pain scale's words at its ends, from the NRS of the instrument library (Serlin et
    al. 1995), so that the diary asks exactly as the clinic's assessments do."""
    from ketapath.knowledge.instruments import load_instruments

    nrs = next(i for i in load_instruments() if i.id == "nrs")
    return dict(nrs.response.anchors)


def _values_of(own: PatientDiary) -> dict[str, Any]:
    """The form filled with today's entry when there is one (writing again amends it)."""
    values: dict[str, Any] = {"day": own.today.isoformat(), "effects": []}
    entry = own.today_entry
    if entry is None:
        return values
    values.update(
        {
            "pain_nrs": str(entry.pain_nrs),
            "sleep_quality": "" if entry.sleep_quality is None else str(entry.sleep_quality),
            "effects": [s.effect for s in entry.side_effects],
            "other_effect": next(
                (s.description for s in entry.side_effects if s.effect == "other"), ""
            ),
            "note": entry.note,
        }
    )
    for n, dose in enumerate(entry.opioid_doses[:DIARY_DOSE_ROWS], start=1):
        values.update(
            {
                f"dose_{n}_name": dose.name,
                f"dose_{n}_dose": f"{dose.dose:g}",
                f"dose_{n}_unit": dose.unit,
                f"dose_{n}_times": str(dose.times),
            }
        )
    return values


def _session(request: Request) -> str:
    return request.cookies.get(COOKIE, "")[:200]


@router.get("/diary", response_class=HTMLResponse)
def diary_page(request: Request, db: DatabaseDep, clock: ClockDep, saved: str = "") -> Response:
    try:
        own = diary.patient_diary(db, _session(request), clock=clock)
    except (AuthenticationFailed, LinkRefused) as error:
        return refused_page(request, error)
    return _diary_page(request, own, saved=saved == "1")


@router.post("/diary", response_model=None)
async def write_diary(
    request: Request, db: DatabaseDep, settings: SettingsDep, clock: ClockDep
) -> Response:
    posted = await posted_form(request)
    form = await request.form()
    effects = [v for v in form.getlist("effects") if isinstance(v, str)][: diary.MAX_SIDE_EFFECTS]
    return await run_in_threadpool(
        _write, request, db, settings, clock, {**posted, "effects": effects}
    )


def _entry_data(values: dict[str, Any]) -> tuple[dict[str, Any], dict[int, int]]:
    """The form as the service's input; the rows of the doses given, by their place."""
    ticked = list(dict.fromkeys(values.get("effects", [])))
    if str(values.get("other_effect", "")).strip() and "other" not in ticked:
        ticked.append("other")  # a described side effect is one, ticked or not
    effects = [
        {"effect": e, "description": values.get("other_effect", "") if e == "other" else ""}
        for e in ticked
    ]
    doses: list[dict[str, str]] = []
    rows: dict[int, int] = {}
    for n in range(1, DIARY_DOSE_ROWS + 1):
        parts = {p: str(values.get(f"dose_{n}_{p}", "")).strip() for p in LINK_DOSE_PARTS}
        if not any(parts.values()):
            continue
        rows[len(doses)] = n
        doses.append({**parts, "times": parts["times"] or "1"})
    data = {
        "day": str(values.get("day", "")).strip(),
        "pain_nrs": str(values.get("pain_nrs", "")).strip() or None,
        "sleep_quality": str(values.get("sleep_quality", "")).strip() or None,
        "side_effects": effects,
        "opioid_doses": doses,
        "note": str(values.get("note", "")),
    }
    # an empty scale was not answered: "required" for pain, nothing for sleep
    return {k: v for k, v in data.items() if v is not None}, rows


def entry_errors(rows: dict[int, int], effects: list[str]) -> FormErrors:
    """The diary form's problems, each beside its field (a dose's by its row; the other side
    effect's by its text)."""

    def where(path: str) -> str:
        if path.startswith("opioid_doses["):
            index = int(path.split("[", 1)[1].split("]", 1)[0])
            part = path.rsplit(".", 1)[-1] if "." in path else "name"
            part = part if part in LINK_DOSE_PARTS else "name"
            return f"dose_{rows.get(index, index + 1)}_{part}"
        if path.startswith("side_effects["):
            index = int(path.split("[", 1)[1].split("]", 1)[0])
            other = index < len(effects) and effects[index] == "other"
            return "other_effect" if other else "side_effects"
        if path.startswith("side_effects"):
            return "side_effects"
        name = path.split("[")[0].split(".")[0]
        return name if name in ENTRY_LABELS else ""

    return FormErrors(ENTRY_LABELS, where=where)


def _write(
    request: Request,
    db: Database,
    settings: Any,
    clock: ClinicClock,
    values: dict[str, Any],
) -> Response:
    secret = _session(request)
    try:
        own = diary.patient_diary(db, secret, clock=clock)
    except (AuthenticationFailed, LinkRefused) as error:
        return refused_page(request, error)
    data, rows = _entry_data(values)
    errors = entry_errors(rows, [e["effect"] for e in data["side_effects"]])
    errors.limit(values, "note", diary.NOTE_LENGTH)
    entry = validated(errors, DiaryEntryInput, data)
    if entry is not None and not errors:
        try:
            diary.record_entry(db, secret, entry, clock=clock, settings=settings)
        except (AuthenticationFailed, LinkRefused, TooManyRequests) as error:
            return refused_page(request, error)
        except (InvalidInput, Conflict) as error:
            errors.add_error(error)
        else:
            return RedirectResponse("/diary?saved=1", status_code=303)
    return _diary_page(request, own, values=values, errors=errors, status_code=422)


# ------------------------------------------------------------------ the clinic (order page)


@router.post("/orders/{order_id}/diary-links", response_model=None)
async def create_link(
    request: Request,
    order_id: RecordId,
    actor: PageUser,
    db: DatabaseDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> Response:
    posted = await posted_form(request)
    return await run_in_threadpool(_create, request, db, actor, order_id, settings, clock, posted)


def _create(
    request: Request,
    db: Database,
    actor: Actor,
    order_id: int,
    settings: Any,
    clock: ClinicClock,
    posted: dict[str, str],
) -> Response:
    values = {name: posted.get(name, "") for name in LINK_FIELDS}
    errors = link_errors()
    errors.require(values, "days_valid")
    days = record_id(values["days_valid"]) if values["days_valid"].strip() else None
    if values["days_valid"].strip() and days is None:
        errors.add("days_valid", "Days valid must be a whole number from 1 to 120.")
    status_code = 422
    issued = None
    if not errors and days is not None:
        try:
            issued = diary.create_link(
                db,
                actor,
                order_id,
                days_valid=days,
                send_to=values["send_to"].strip() or None,
                clock=clock,
                settings=settings,
            )
        except (InvalidInput, Conflict) as error:
            errors.add_error(error)
            status_code = error.status_code
        else:
            status_code = 201
    form = {"values": values, "errors": errors or None, "issued": issued}
    return render_order_page(
        request, db, actor, order_id, clock, diary_form=form, status_code=status_code
    )


@router.post("/diary-links/{link_id}/revoke", response_model=None)
def revoke_link(
    link_id: RecordId, actor: PageUser, db: DatabaseDep, clock: ClockDep
) -> RedirectResponse:
    link = diary.revoke_link(db, actor, link_id, clock=clock)
    return RedirectResponse(f"/orders/{link.order_id}#order-diary", status_code=303)
