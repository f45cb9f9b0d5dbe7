"""Recording an assessment: choose the instrument, answer its items, save (nurse, physician)."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ketapath.api.deps import DatabaseDep
from ketapath.api.params import RecordId
from ketapath.domain.errors import OutOfBounds
from ketapath.domain.patient import EARLIEST_DATE
from ketapath.services import assessments
from ketapath.services.assessments import AssessmentInput
from ketapath.services.errors import InvalidInput
from ketapath.services.permissions import Actor
from ketapath.services.unit import check
from ketapath.store.db import Database
from ketapath.web.forms import FormErrors
from ketapath.web.instrument_forms import InstrumentForm, find_form, instrument_forms
from ketapath.web.pages import (
    PageRoute,
    PageUser,
    clinic_clock_for,
    clinic_zone,
    posted_form,
    render,
)
from ketapath.web.patient_pages import patient_context

router = APIRouter(route_class=PageRoute, include_in_schema=False)

ITEM_PREFIX = "item_"


def parse_given_at(text: str, zone: tzinfo | None = None) -> datetime | None:
    """The form's local date and time (``2026-03-01T09:30``) as UTC; empty means now.

    A time without a zone is the clinic's (``zone``; the server's own when None).
    """
    text = text.strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError as error:
        raise InvalidInput(
            "administered_at: give the date and time as YYYY-MM-DD HH:MM.", field="administered_at"
        ) from error
    if not EARLIEST_DATE.year <= value.year < 9999:  # converting zones would overflow
        rule = (
            OutOfBounds("before 1900", kind="before_earliest", earliest=EARLIEST_DATE)
            if value.year < EARLIEST_DATE.year
            else OutOfBounds("in the future", kind="in_future")
        )
        raise InvalidInput(
            f"administered_at: {value.date().isoformat()} is not a date an assessment can have "
            f"been given (not before {EARLIEST_DATE.isoformat()}, not in the future).",
            field="administered_at",
        ) from rule
    if value.tzinfo is None:  # the clinic's local time, as the form shows it
        value = value.replace(tzinfo=zone) if zone is not None else value.astimezone()
    return value.astimezone(UTC)


def parse_answers(form: InstrumentForm, posted: dict[str, str]) -> dict[str, int]:
    """The answered items as whole numbers; unanswered items are left out (not zero)."""
    answers: dict[str, int] = {}
    for item in form.items:
        raw = posted.get(ITEM_PREFIX + item.id, "").strip()
        if raw == "":
            continue
        try:
            answers[item.id] = int(raw)
        except ValueError as error:
            raise InvalidInput(
                f"answers.{item.id}: item {item.number} ({item.label}) takes a whole number "
                f"from {item.minimum} to {item.maximum}, not {raw!r}.",
                field=f"answers.{item.id}",
            ) from error
    if not answers:
        raise InvalidInput("answers: answer at least one item.", field="answers")
    return answers


def assessment_errors(form: InstrumentForm | None) -> FormErrors:
    """The form's problems: an item's answer is shown at its question (``fs-<item>``)."""
    labels = {"instrument_id": "Instrument"}
    for item in form.items if form else ():
        labels[f"fs-{item.id}"] = f"Question {item.number} ({item.label})"
    labels["administered_at"] = "Given at"

    def where(path: str) -> str:
        if path.startswith("answers."):
            return f"fs-{path.removeprefix('answers.')}"
        return path if path in labels else ""

    return FormErrors(labels, where=where)


def _form_page(
    request: Request,
    db: Database,
    actor: Actor,
    patient_id: int,
    instrument_id: str,
    *,
    values: dict[str, str] | None = None,
    errors: FormErrors | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    context = patient_context(db, actor, patient_id)
    forms = instrument_forms()
    chosen = find_form(instrument_id) if instrument_id else None
    zone = clinic_zone(request)
    context.update(
        {
            "forms": forms,
            "form": chosen,
            "instrument_id": instrument_id,
            "values": values or {},
            "errors": errors,
            "item_prefix": ITEM_PREFIX,
            "given_limits": {
                "min": f"{EARLIEST_DATE.isoformat()}T00:00",
                "max": f"{clinic_clock_for(request).today().isoformat()}T23:59",
            },
            "zone_name": datetime.now(zone).tzname() if zone else "",
        }
    )
    template = (
        "_assessment_items.html"
        if request.headers.get("HX-Target") == "assessment-items"
        else "assessment_form.html"
    )
    return render(request, template, context, status_code=status_code)


@router.get("/patients/{patient_id}/assessments/new", response_class=HTMLResponse)
def new_assessment(
    request: Request,
    patient_id: RecordId,
    actor: PageUser,
    db: DatabaseDep,
    instrument_id: Annotated[str, Query(max_length=40)] = "",
) -> HTMLResponse:
    # The form is for the roles that may record; the service checks (and audits) it too.
    check(db, actor, "assessment.record", entity="assessment", patient_id=patient_id)
    return _form_page(request, db, actor, patient_id, instrument_id)


@router.post("/patients/{patient_id}/assessments", response_model=None)
async def record_assessment(
    request: Request, patient_id: RecordId, actor: PageUser, db: DatabaseDep
) -> Response:
    posted = await posted_form(request)
    return await run_in_threadpool(_save, request, db, actor, patient_id, posted)


def _save(
    request: Request, db: Database, actor: Actor, patient_id: int, posted: dict[str, str]
) -> Response:
    check(db, actor, "assessment.record", entity="assessment", patient_id=patient_id)
    instrument_id = posted.get("instrument_id", "").strip()
    form = find_form(instrument_id)
    errors = assessment_errors(form)
    if form is None:
        errors.add("instrument_id", "Instrument: choose one of the instruments offered.")
    answers: dict[str, int] = {}
    given_at = None
    if form is not None:
        try:
            answers = parse_answers(form, posted)
        except InvalidInput as error:
            errors.add_error(error)
    try:
        given_at = parse_given_at(posted.get("administered_at", ""), clinic_zone(request))
    except InvalidInput as error:
        errors.add_error(error)
    if not errors and form is not None:
        data = AssessmentInput(instrument_id=form.id, answers=answers, administered_at=given_at)
        try:
            assessments.record_assessment(
                db, actor, patient_id, data, clock=clinic_clock_for(request)
            )
        except InvalidInput as error:
            errors.add_error(error)
    if errors:
        return _form_page(
            request,
            db,
            actor,
            patient_id,
            instrument_id,
            values=posted,
            errors=errors,
            status_code=422,
        )
    return RedirectResponse(f"/patients/{patient_id}#assessments", status_code=303)
