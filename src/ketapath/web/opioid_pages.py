"""The opioid plan in the browser (PRODUCT step 6; FPM (ANZCA) 2016 proposal, section 6).

One page per patient: the current opioids in oral morphine equivalents (the table used is
named), the agreed plan with its dated taper steps, a form that previews a conversion to one
opioid and a taper (anyone of the clinical team) and lets a physician agree it (with a
written reason where the taper is faster than a published rate), and the doses actually
taken, recorded at follow-ups, charted against the plan. Every number comes from
``ketapath.services.opioids``; this module only reads forms and renders.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ketapath.api.deps import DatabaseDep
from ketapath.api.params import RecordId, record_id
from ketapath.domain.errors import OutOfBounds
from ketapath.domain.opioids import DEFAULT_TABLE
from ketapath.domain.patient import Medication, check_day
from ketapath.knowledge.clinical import knowledge
from ketapath.services import opioids
from ketapath.services.errors import Conflict, InvalidInput, OrderRefused
from ketapath.services.opioids import (
    AgreeInput,
    DoseInput,
    DoseMedicine,
    DoseView,
    OpioidPlanContent,
    PlanInput,
    TaperInput,
)
from ketapath.services.permissions import Actor
from ketapath.services.unit import check
from ketapath.services.validation import REASON_LENGTH
from ketapath.store.db import Database
from ketapath.web import charts
from ketapath.web.forms import (
    NUMBER_LENGTH,
    FormErrors,
    date_limits,
    max_length,
    rule_message,
    validated,
)
from ketapath.web.pages import PageRoute, PageUser, clinic_clock_for, posted_form, render
from ketapath.web.patient_pages import patient_context

router = APIRouter(route_class=PageRoute, include_in_schema=False)

PLAN_FIELDS = (
    "convert_opioid",
    "convert_route",
    "reduce_percent",
    "step_percent",
    "every_days",
    "start_date",
    "basis",
    "round_to",
    "floor",
    "taper_opioid",
    "taper_route",
    "start_daily_dose",
    "unit",
    "notes",
)
DOSE_ROWS = 3
ROUTES = (("oral", "Oral"), ("transdermal", "Transdermal (patch)"))


def _opt(value: str) -> str | None:
    return value.strip() or None


def plan_request(form: dict[str, str]) -> dict[str, Any]:
    """The plan form as the service's request (empty fields are left to the service)."""
    body: dict[str, Any] = {"notes": form.get("notes", "")}
    if _opt(form.get("convert_opioid", "")):
        body["convert_to"] = {
            "opioid_id": form["convert_opioid"].strip(),
            "route": _opt(form.get("convert_route", "")) or "oral",
            "reduce_percent": _opt(form.get("reduce_percent", "")),
        }
    if _opt(form.get("step_percent", "")) or _opt(form.get("every_days", "")):
        taper: dict[str, Any] = {
            "step_percent": _opt(form.get("step_percent", "")),
            "every_days": _opt(form.get("every_days", "")),
            "start_date": _opt(form.get("start_date", "")),
            "basis": _opt(form.get("basis", "")) or "original",
        }
        for key, name in (
            ("round_to", "round_to"),
            ("floor", "floor"),
            ("taper_opioid", "opioid_id"),
            ("taper_route", "route"),
            ("start_daily_dose", "start_daily_dose"),
            ("unit", "unit"),
        ):
            value = _opt(form.get(key, ""))
            if value is not None:
                taper[name] = value
        body["taper"] = taper
    return body


def dose_rows(form: dict[str, str]) -> list[int]:
    """The rows of the dose form with something typed in (the route is a select, always
    sent: a row counts when its opioid, amount or unit is typed)."""
    return [
        index
        for index in range(DOSE_ROWS)
        if any(form.get(f"dose_{c}_{index}", "").strip() for c in ("name", "daily_dose", "unit"))
    ]


def dose_request(form: dict[str, str]) -> dict[str, Any]:
    medicines = []
    for index in dose_rows(form):
        cells = {
            c: form.get(f"dose_{c}_{index}", "").strip()
            for c in ("name", "daily_dose", "unit", "route")
        }
        medicines.append(
            {
                "name": cells["name"],
                "daily_dose": cells["daily_dose"] or None,
                "unit": cells["unit"],
                "route": cells["route"],
            }
        )
    return {
        "taken_on": _opt(form.get("taken_on", "")),
        "medications": medicines,
        "note": form.get("note", ""),
    }


def dose_chart(doses: list[DoseView], plan: OpioidPlanContent | None) -> Any:
    """Recorded daily OME over time (complete totals only; an incomplete total is not 0)."""
    points = [
        charts.Point(datetime.combine(d.taken_on, time(12), tzinfo=UTC), d.ome_mg_per_day)
        for d in doses
        if d.ome_mg_per_day is not None
    ]
    if not points:
        return None
    steps = plan.taper.steps if plan is not None and plan.taper is not None else []
    planned = [s.ome_mg_per_day for s in steps if s.ome_mg_per_day is not None]
    high = max([p.value for p in points] + planned + [10.0])
    return charts.line_chart(
        points,
        title="Oral morphine equivalents taken per day, as recorded at follow-ups",
        y_label="mg OME per day",
        y_min=0,
        y_max=high * 1.1,
        chart_id="ome-chart",
    )


PLAN_LABELS = {
    "convert_opioid": "Opioid to convert to",
    "convert_route": "Route of the new opioid",
    "reduce_percent": "Reduction for incomplete cross-tolerance",
    "step_percent": "Reduction per step",
    "basis": "Percent of",
    "every_days": "Days between steps",
    "start_date": "First step on",
    "round_to": "Round down to",
    "floor": "Stop at",
    "taper_opioid": "Opioid to taper",
    "taper_route": "Its route",
    "start_daily_dose": "Start dose per day",
    "unit": "Unit",
    "notes": "Rest of the plan",
    "override_reason": "Reason for override",
}
# The service's request fields (PlanInput, AgreeInput) at the form's fields.
PLAN_PATHS = {
    "convert_to": "convert_opioid",
    "convert_to.opioid_id": "convert_opioid",
    "convert_to.opioid": "convert_opioid",
    "convert_to.route": "convert_route",
    "convert_to.reduce_percent": "reduce_percent",
    "taper": "step_percent",
    "taper.opioid_id": "taper_opioid",
    "taper.route": "taper_route",
    "taper.opioid": "taper_opioid",
    "taper.medications": "taper_opioid",
}
DOSE_COLUMNS = {"name": "Opioid", "daily_dose": "Amount per day", "unit": "Unit", "route": "Route"}


def plan_errors() -> FormErrors:
    """The plan form's problems, at the form's fields."""

    def where(path: str) -> str:
        if path in PLAN_PATHS:
            return PLAN_PATHS[path]
        name = path.removeprefix("taper.")
        return name if name in PLAN_LABELS else ""

    return FormErrors(PLAN_LABELS, where=where)


def dose_errors(form: dict[str, str]) -> FormErrors:
    """The dose form's problems: a medicine of the request at its row of the form."""
    labels = {"taken_on": "Day"}
    for row in range(DOSE_ROWS):
        for column, words in DOSE_COLUMNS.items():
            labels[f"dose_{column}_{row}"] = f"{words} in row {row + 1}"
    labels.update({"note": "Note", "reason": "Why the record is corrected"})
    rows = dose_rows(form)

    def where(path: str) -> str:
        item = re.match(r"^medications\[(\d+)\](?:\.(\w+))?", path)
        if item:
            index = int(item.group(1))
            column = item.group(2) if item.group(2) in DOSE_COLUMNS else "name"
            return f"dose_{column}_{rows[index]}" if index < len(rows) else ""
        return path if path in labels else ""

    return FormErrors(labels, where=where)


def form_limits() -> dict[str, int]:
    """``maxlength`` of the page's text fields: what the service's requests accept."""
    return {
        "number": NUMBER_LENGTH,
        "unit": max_length(TaperInput, "unit"),
        "notes": max_length(PlanInput, "notes"),
        "reason": REASON_LENGTH,
        "dose_name": max_length(DoseMedicine, "name"),
        "dose_unit": max_length(DoseMedicine, "unit"),
        "note": max_length(DoseInput, "note"),
    }


def _page(
    request: Request,
    db: Database,
    actor: Actor,
    patient_id: int,
    *,
    form: dict[str, str] | None = None,
    dose_form: dict[str, str] | None = None,
    errors: FormErrors | None = None,
    dose_problems: FormErrors | None = None,
    withdraw_problems: FormErrors | None = None,
    withdraw_reason: str = "",
    correct: int | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The page; ``correct`` names a recorded dose whose correction form is to be shown."""
    context = patient_context(db, actor, patient_id)
    table = request.query_params.get("table", DEFAULT_TABLE)
    summary = opioids.opioid_summary(db, actor, patient_id, table)
    plans = opioids.list_opioid_plans(db, actor, patient_id)
    current = next((p for p in plans if p.status == "agreed"), None)
    doses = opioids.list_opioid_doses(db, actor, patient_id)
    if dose_form is None and correct is not None:
        dose_form = correction_form(doses, correct)
    form = form or {}
    preview = None
    if any(form.get(k) for k in PLAN_FIELDS if k != "notes"):
        # the preview again after an agreement was refused, so that its form (and the
        # reason typed into it) is shown with the problem beside it
        errors = errors if errors is not None else plan_errors()
        request_body = validated(errors, PlanInput, plan_request(form))
        if request_body is not None:
            try:
                preview = opioids.preview_opioid_plan(
                    db, actor, patient_id, request_body, clock=clinic_clock_for(request)
                )
            except InvalidInput as problem:
                errors.add_error(problem)
        if errors and status_code == 200:
            status_code = 422
    today = clinic_clock_for(request).today()
    kb = knowledge()
    context.update(
        {
            "summary": summary.ome,
            "patient_version": summary.patient_version,
            "tables": kb.opioid_conversion.entries,
            "opioids": kb.opioid_ids,
            "routes": ROUTES,
            "plans": plans,
            "current": current,
            "doses": doses,
            "chart": dose_chart(doses, current.plan if current else None),
            "form": {k: v for k, v in form.items() if k in PLAN_FIELDS},
            "override_reason": form.get("override_reason", ""),
            "preview": preview,
            "errors": errors,
            "dose_form": dose_form or {"taken_on": today.isoformat()},
            "dose_errors": dose_problems,
            "dose_rows": DOSE_ROWS,
            "withdraw_errors": withdraw_problems,
            "withdraw_reason": withdraw_reason,
            "limits": form_limits(),
            "dates": date_limits(today),
        }
    )
    return render(request, "opioids.html", context, status_code=status_code)


@router.get("/patients/{patient_id}/opioids", response_class=HTMLResponse)
def opioid_page(
    request: Request, patient_id: RecordId, actor: PageUser, db: DatabaseDep
) -> HTMLResponse:
    form = {k: v for k, v in request.query_params.items() if k in PLAN_FIELDS}
    correct = request.query_params.get("correct", "")
    return _page(
        request,
        db,
        actor,
        patient_id,
        form=form,
        correct=record_id(correct),
    )


def correction_form(doses: list[DoseView], dose_id: int) -> dict[str, str] | None:
    """The dose form filled from a recorded dose, to correct it (``amends`` names it)."""
    dose = next((d for d in doses if d.id == dose_id), None)
    if dose is None:
        return None
    form = {"taken_on": dose.taken_on.isoformat(), "note": dose.note or "", "amends": str(dose.id)}
    computed = {line.index: line for line in dose.result.lines}
    for index, medicine in enumerate(dose.medications[:DOSE_ROWS]):
        daily = medicine.daily_dose
        if daily is None and index in computed:  # recorded as dose x frequency: offer the
            daily = computed[index].daily_dose  # daily amount it gave
        form[f"dose_name_{index}"] = medicine.name
        form[f"dose_daily_dose_{index}"] = "" if daily is None else f"{float(daily):g}"
        form[f"dose_unit_{index}"] = medicine.unit
        form[f"dose_route_{index}"] = medicine.route
    return form


@router.post("/patients/{patient_id}/opioid-plans", response_model=None)
async def agree_plan(
    request: Request, patient_id: RecordId, actor: PageUser, db: DatabaseDep
) -> Response:
    form = await posted_form(request)
    return await run_in_threadpool(_agree, request, db, actor, patient_id, form)


def _agree(
    request: Request, db: Database, actor: Actor, patient_id: int, form: dict[str, str]
) -> Response:
    check(db, actor, "opioid.plan", entity="opioid_plan", patient_id=patient_id)
    errors = plan_errors()
    body = plan_request(form)
    body["override_reason"] = _opt(form.get("override_reason", ""))
    body["patient_version"] = record_id(form.get("patient_version", ""))  # same column bound
    agreed = validated(errors, AgreeInput, body)
    status_code = 422
    if agreed is not None:
        try:
            opioids.agree_opioid_plan(
                db, actor, patient_id, agreed, clock=clinic_clock_for(request)
            )
        except (InvalidInput, OrderRefused, Conflict) as error:
            errors.add_error(error)
            status_code = error.status_code
    if errors:
        return _page(
            request, db, actor, patient_id, form=form, errors=errors, status_code=status_code
        )
    return RedirectResponse(f"/patients/{patient_id}/opioids#plan", status_code=303)


@router.post("/opioid-plans/{plan_id}/withdraw", response_model=None)
async def withdraw_plan(
    request: Request, plan_id: RecordId, actor: PageUser, db: DatabaseDep
) -> Response:
    form = await posted_form(request)
    return await run_in_threadpool(_withdraw, request, db, actor, plan_id, form)


def _withdraw(
    request: Request, db: Database, actor: Actor, plan_id: int, form: dict[str, str]
) -> Response:
    """Withdraw a plan; a reason left out (or too long) shows the patient's page again with
    the problem beside the reason (the form names its patient, for that page only)."""
    check(db, actor, "opioid.plan", entity="opioid_plan", entity_id=plan_id)
    reason = form.get("reason", "")
    errors = FormErrors(
        {"withdraw-reason": "Reason for withdrawing the plan"},
        where=lambda path: "withdraw-reason" if path == "reason" else "",
    )
    errors.limit({"withdraw-reason": reason}, "withdraw-reason", REASON_LENGTH)
    patient_id = record_id(form.get("patient_id", ""))
    if errors and patient_id is None:
        raise InvalidInput(errors.problems[0].message, field="reason")
    if not errors:
        try:
            view = opioids.withdraw_opioid_plan(db, actor, plan_id, reason=reason)
        except InvalidInput as error:
            if patient_id is None:
                raise
            errors.add_error(error)
        else:
            return RedirectResponse(f"/patients/{view.patient_id}/opioids#plan", status_code=303)
    assert patient_id is not None
    return _page(
        request,
        db,
        actor,
        patient_id,
        withdraw_problems=errors,
        withdraw_reason=reason,
        status_code=422,
    )


@router.post("/patients/{patient_id}/opioid-doses", response_model=None)
async def record_dose(
    request: Request, patient_id: RecordId, actor: PageUser, db: DatabaseDep
) -> Response:
    form = await posted_form(request)
    return await run_in_threadpool(_record, request, db, actor, patient_id, form)


def _checked_dose(request: Request, form: dict[str, str]) -> tuple[DoseInput | None, FormErrors]:
    """The dose the form describes and every problem of it at once: the request's fields,
    each opioid against the record's bounds, the day against the clinic's today."""
    errors = dose_errors(form)
    if form.get("amends", "").strip():
        errors.require(form, "reason")
        errors.limit(form, "reason", REASON_LENGTH)
    body = dose_request(form)
    data = validated(errors, DoseInput, body)
    for index, medicine in enumerate(body["medications"]):
        given = {k: v for k, v in medicine.items() if v not in (None, "")}
        validated(errors, Medication, given, prefix=f"medications[{index}]")
    try:
        taken_on = date.fromisoformat(form.get("taken_on", "").strip())
        check_day(taken_on, clinic_clock_for(request).today(), "taken_on")
    except OutOfBounds as rule:
        errors.add("taken_on", rule_message(rule, errors.label("taken_on")))
    except ValueError:
        pass  # not a date: the request's validation says so
    return (data if not errors else None), errors


def _record(
    request: Request, db: Database, actor: Actor, patient_id: int, form: dict[str, str]
) -> Response:
    check(db, actor, "opioid.record", entity="opioid_dose", patient_id=patient_id)
    data, errors = _checked_dose(request, form)
    correcting = form.get("amends", "").strip()
    dose_id = record_id(correcting) if correcting else None
    if correcting and dose_id is None:
        errors.add("", "The form names no recorded dose to correct: reload the page.")
    status_code = 422
    if data is not None and not errors:
        try:
            if dose_id is not None:
                opioids.amend_opioid_dose(
                    db,
                    actor,
                    dose_id,
                    data,
                    reason=form.get("reason", ""),
                    clock=clinic_clock_for(request),
                )
            else:
                opioids.record_opioid_dose(
                    db, actor, patient_id, data, clock=clinic_clock_for(request)
                )
        except (InvalidInput, Conflict) as error:
            errors.add_error(error)
            status_code = error.status_code
    if errors:
        return _page(
            request,
            db,
            actor,
            patient_id,
            dose_form=form,
            dose_problems=errors,
            status_code=status_code,
        )
    return RedirectResponse(f"/patients/{patient_id}/opioids#doses", status_code=303)
