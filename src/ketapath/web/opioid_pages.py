"""The opioid plan in the browser (PRODUCT step 6; FPM (ANZCA) 2016 proposal, section 6).

One page per patient: the current opioids in oral morphine equivalents (the table used is
named), the agreed plan with its dated taper steps, a form that previews a conversion to one
opioid and a taper (anyone of the clinical team) and lets a physician agree it (with a
written reason where the taper is faster than a published rate), and the doses actually
taken, recorded at follow-ups, charted against the plan. Every number comes from
``ketapath.services.opioids``; this module only reads forms and renders.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ketapath.api.deps import DatabaseDep
from ketapath.api.params import RecordId, record_id
from ketapath.domain.opioids import DEFAULT_TABLE
from ketapath.knowledge.clinical import knowledge
from ketapath.services import opioids
from ketapath.services.errors import Conflict, InvalidInput, OrderRefused, ServiceError
from ketapath.services.opioids import (
    AgreeInput,
    DoseInput,
    DoseView,
    OpioidPlanContent,
    PlanInput,
)
from ketapath.services.permissions import Actor
from ketapath.services.validation import validate
from ketapath.store.db import Database
from ketapath.web import charts
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


def dose_request(form: dict[str, str]) -> dict[str, Any]:
    medicines = []
    for index in range(DOSE_ROWS):
        cells = {
            c: form.get(f"dose_{c}_{index}", "").strip()
            for c in ("name", "daily_dose", "unit", "route")
        }
        if not any(cells[c] for c in ("name", "daily_dose", "unit")):
            continue  # the route is a select, always sent: a row counts when typed in
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


def _page(
    request: Request,
    db: Database,
    actor: Actor,
    patient_id: int,
    *,
    form: dict[str, str] | None = None,
    dose_form: dict[str, str] | None = None,
    error: ServiceError | None = None,
    dose_error: ServiceError | None = None,
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
    if error is None and any(form.get(k) for k in PLAN_FIELDS if k != "notes"):
        try:
            preview = opioids.preview_opioid_plan(
                db,
                actor,
                patient_id,
                validate(PlanInput, plan_request(form)),
                clock=clinic_clock_for(request),
            )
        except InvalidInput as problem:
            error, status_code = problem, problem.status_code
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
            "form": form,
            "preview": preview,
            "error": error,
            "error_field": (error.field or "") if error else "",
            "dose_form": dose_form or {"taken_on": clinic_clock_for(request).today().isoformat()},
            "dose_error": dose_error,
            "dose_rows": DOSE_ROWS,
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
    try:
        body = plan_request(form)
        body["override_reason"] = _opt(form.get("override_reason", ""))
        version = form.get("patient_version", "").strip()
        body["patient_version"] = record_id(version)  # a version number: same column bound
        opioids.agree_opioid_plan(
            db, actor, patient_id, validate(AgreeInput, body), clock=clinic_clock_for(request)
        )
    except (InvalidInput, OrderRefused, Conflict) as error:
        return _page(
            request, db, actor, patient_id, form=form, error=error, status_code=error.status_code
        )
    return RedirectResponse(f"/patients/{patient_id}/opioids#plan", status_code=303)


@router.post("/opioid-plans/{plan_id}/withdraw", response_model=None)
async def withdraw_plan(
    request: Request, plan_id: RecordId, actor: PageUser, db: DatabaseDep
) -> Response:
    form = await posted_form(request)
    view = await run_in_threadpool(
        opioids.withdraw_opioid_plan, db, actor, plan_id, reason=form.get("reason", "")
    )
    return RedirectResponse(f"/patients/{view.patient_id}/opioids#plan", status_code=303)


@router.post("/patients/{patient_id}/opioid-doses", response_model=None)
async def record_dose(
    request: Request, patient_id: RecordId, actor: PageUser, db: DatabaseDep
) -> Response:
    form = await posted_form(request)
    return await run_in_threadpool(_record, request, db, actor, patient_id, form)


def _record(
    request: Request, db: Database, actor: Actor, patient_id: int, form: dict[str, str]
) -> Response:
    try:
        data = validate(DoseInput, dose_request(form))
        correcting = form.get("amends", "").strip()
        if correcting:
            dose_id = record_id(correcting)
            if dose_id is None:
                raise InvalidInput(
                    "amends: the form names no recorded dose to correct; reload it.",
                    field="amends",
                )
            opioids.amend_opioid_dose(
                db,
                actor,
                dose_id,
                data,
                reason=form.get("reason", ""),
                clock=clinic_clock_for(request),
            )
        else:
            opioids.record_opioid_dose(db, actor, patient_id, data, clock=clinic_clock_for(request))
    except (InvalidInput, Conflict) as error:
        return _page(
            request,
            db,
            actor,
            patient_id,
            dose_form=form,
            dose_error=error,
            status_code=error.status_code,
        )
    return RedirectResponse(f"/patients/{patient_id}/opioids#doses", status_code=303)
