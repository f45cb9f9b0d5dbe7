"""Recording an assessment: choose the instrument, answer its items, save (nurse, physician).

Reached from an order page (``?order_id=...&label=follow-up&timepoint_days=28``), the form
also says which course the assessment is for: baseline, after a session of it, or a follow-up
some days after its last session (``services.assessments``). The order page lists the
course's assessments by label (``course_assessments``).
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ketapath.api.deps import DatabaseDep
from ketapath.api.params import RecordId, record_id
from ketapath.domain.errors import OutOfBounds
from ketapath.domain.patient import EARLIEST_DATE
from ketapath.services import assessments, sessions
from ketapath.services.assessments import (
    LABELS,
    MAX_TIMEPOINT_DAYS,
    AssessmentInput,
    context_problem,
)
from ketapath.services.clock import ClinicClock
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
# The course fields of the form (and of the query that opens it from an order page).
COURSE_FIELDS = ("order_id", "label", "timepoint_days", "session_id")
LABEL_WORDS = {
    "baseline": "Baseline (before the course)",
    "post-session": "After a session of the course",
    "follow-up": "Follow-up after the last session",
}


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
    labels.update(
        {
            "label": "Assessment for",
            "timepoint_days": "Days after the last session",
            "session_id": "Session",
            "order_id": "Course",
        }
    )

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
    course = _course(db, actor, patient_id, values or {}, clinic_clock_for(request))
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
            "course": course,
            "label_words": LABEL_WORDS,
            "max_timepoint_days": MAX_TIMEPOINT_DAYS,
        }
    )
    template = (
        "_assessment_items.html"
        if request.headers.get("HX-Target") == "assessment-items"
        else "assessment_form.html"
    )
    return render(request, template, context, status_code=status_code)


def _course(
    db: Database, actor: Actor, patient_id: int, values: dict[str, str], clock: ClinicClock
) -> dict[str, Any] | None:
    """The course section of the form (None when the form is not for a course): the order,
    and the sessions of it a post-session assessment can name."""
    order_id = record_id(values.get("order_id", ""))
    if order_id is None:
        return None
    choices: list[tuple[int, str]] = []
    if actor.may("session.read"):
        found = sessions.patient_sessions(db, actor, patient_id, clock=clock).sessions
        choices = [
            (s.id, f"Session {s.session_number} on {s.scheduled_on.isoformat()}")
            for s in found
            if s.order_id == order_id
        ]
    return {"order_id": order_id, "sessions": choices, "labels": LABELS}


@router.get("/patients/{patient_id}/assessments/new", response_class=HTMLResponse)
def new_assessment(
    request: Request,
    patient_id: RecordId,
    actor: PageUser,
    db: DatabaseDep,
    instrument_id: Annotated[str, Query(max_length=40)] = "",
    order_id: Annotated[str, Query(max_length=12)] = "",
    label: Annotated[str, Query(max_length=20)] = "",
    timepoint_days: Annotated[str, Query(max_length=6)] = "",
    session_id: Annotated[str, Query(max_length=12)] = "",
) -> HTMLResponse:
    # The form is for the roles that may record; the service checks (and audits) it too.
    check(db, actor, "assessment.record", entity="assessment", patient_id=patient_id)
    values = {
        "order_id": order_id,
        "label": label,
        "timepoint_days": timepoint_days,
        "session_id": session_id,
    }
    return _form_page(request, db, actor, patient_id, instrument_id, values=values)


def parse_course(posted: dict[str, str], errors: FormErrors) -> dict[str, Any]:
    """The course fields of a posted form (all None when it is not for a course); a field
    that cannot be read, or an inconsistent label, is added to ``errors``."""
    out: dict[str, Any] = dict.fromkeys(COURSE_FIELDS)
    if not posted.get("order_id", "").strip():
        return out
    for name in ("order_id", "session_id"):
        text = posted.get(name, "").strip()
        if text:
            out[name] = record_id(text)
            if out[name] is None:
                errors.add(name, f"{errors.label(name)}: choose one of those offered.")
    label = posted.get("label", "").strip()
    if label and label not in LABELS:
        errors.add("label", "Assessment for: choose one of the options offered.")
    out["label"] = label or None
    number = errors.number(posted, "timepoint_days")
    if number is not None:
        if not number.is_integer() or not 1 <= number <= MAX_TIMEPOINT_DAYS:
            errors.add(
                "timepoint_days",
                f"Days after the last session must be a whole number from 1 to "
                f"{MAX_TIMEPOINT_DAYS}.",
            )
        else:
            out["timepoint_days"] = int(number)
    if not errors.any(COURSE_FIELDS):
        problem = context_problem(
            out["order_id"], out["label"], out["timepoint_days"], out["session_id"]
        )
        if problem:
            field = "session_id" if "session" in problem else "label"
            field = "timepoint_days" if "timepoint" in problem else field
            errors.add(field, f"{errors.label(field)}: {problem}.")
    return out


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
    course = parse_course(posted, errors)
    if not errors and form is not None:
        data = AssessmentInput(
            instrument_id=form.id, answers=answers, administered_at=given_at, **course
        )
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
    if course["order_id"] is not None:
        return RedirectResponse(f"/orders/{course['order_id']}#course-assessments", status_code=303)
    return RedirectResponse(f"/patients/{patient_id}#assessments", status_code=303)


def course_assessments(db: Database, actor: Actor, order_id: int) -> dict[str, Any]:
    """What the order page shows of the course's assessments (None when the role may not
    read assessments), and whether the form to record one is offered."""
    if not actor.may("assessment.read"):
        return {"course_assessments": None}
    return {
        "course_assessments": assessments.assessments_for_course(db, actor, order_id),
        "may_record_assessment": actor.may("assessment.record"),
        "label_words": LABEL_WORDS,
    }
