"""Safety follow-up on the patient page: the results of the safety checks (abnormal ones with
their findings in words, rules and citations), and the form that records one
(``services.safety``, ``knowledge/data/safety_checks.yaml``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ketapath.api.deps import DatabaseDep
from ketapath.api.params import RecordId
from ketapath.knowledge.safety import TEXT_LENGTH, SafetyCheck, safety_checks
from ketapath.services import safety
from ketapath.services.errors import InvalidInput
from ketapath.services.permissions import Actor
from ketapath.services.safety import SafetyResultInput
from ketapath.services.unit import check
from ketapath.services.validation import REASON_LENGTH
from ketapath.store.db import Database
from ketapath.web.forms import FormErrors, date_limits, validated
from ketapath.web.pages import PageRoute, PageUser, clinic_clock_for, posted_form, render
from ketapath.web.patient_pages import patient_context

router = APIRouter(route_class=PageRoute, include_in_schema=False)

FIELD_PREFIX = "sf-"


def patient_safety(db: Database, actor: Actor, patient_id: int) -> dict[str, Any]:
    """What the patient page shows of the safety follow-up (None when the role may not read
    it), and the checks a result can be recorded for."""
    if not actor.may("safety.read"):
        return {"safety_results": None}
    return {
        "safety_results": safety.list_safety_results(db, actor, patient_id),
        "safety_checks": safety.safety_catalogue(),
        "may_record_safety": actor.may("safety.record"),
    }


def _find(check_id: str) -> SafetyCheck | None:
    try:
        return safety_checks().check(check_id)
    except KeyError:
        return None


def safety_errors(chosen: SafetyCheck | None) -> FormErrors:
    labels = {"check_id": "Check", "observed_on": "Observed on"}
    for f in chosen.fields if chosen else ():
        labels[FIELD_PREFIX + f.id] = f.label
    labels["note"] = "Note"

    def where(path: str) -> str:
        if path.startswith("values."):
            return FIELD_PREFIX + path.removeprefix("values.")
        return path if path in labels else ""

    return FormErrors(labels, where=where)


def parse_values(chosen: SafetyCheck, posted: dict[str, str], errors: FormErrors) -> dict[str, Any]:
    """The check's values as typed: numbers read, yes/no as booleans, empty fields absent."""
    values: dict[str, Any] = {}
    for f in chosen.fields:
        name = FIELD_PREFIX + f.id
        raw = posted.get(name, "").strip()
        if not raw:
            continue
        if f.kind in ("number", "whole"):
            number = errors.number(posted, name)
            if number is not None:
                values[f.id] = int(number) if f.kind == "whole" and number.is_integer() else number
        elif f.kind == "yes_no":
            if raw not in ("yes", "no"):
                errors.add(name, f"{f.label}: answer yes or no.")
            else:
                values[f.id] = raw == "yes"
        else:
            errors.limit(posted, name, f.max_length or TEXT_LENGTH)
            values[f.id] = raw
    return values


def _form_page(
    request: Request,
    db: Database,
    actor: Actor,
    patient_id: int,
    check_id: str,
    *,
    values: dict[str, str] | None = None,
    errors: FormErrors | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    context = patient_context(db, actor, patient_id)
    today = clinic_clock_for(request).today()
    context.update(
        {
            "checks": safety.safety_catalogue(),
            "check": _find(check_id),
            "check_id": check_id,
            "values": values or {"observed_on": today.isoformat()},
            "errors": errors,
            "prefix": FIELD_PREFIX,
            "day_limits": date_limits(today),
            "note_length": REASON_LENGTH,
        }
    )
    return render(request, "safety_form.html", context, status_code=status_code)


@router.get("/patients/{patient_id}/safety/new", response_class=HTMLResponse)
def new_safety_result(
    request: Request,
    patient_id: RecordId,
    actor: PageUser,
    db: DatabaseDep,
    check_id: Annotated[str, Query(max_length=40)] = "",
) -> HTMLResponse:
    check(db, actor, "safety.record", entity="safety_result", patient_id=patient_id)
    return _form_page(request, db, actor, patient_id, check_id)


@router.post("/patients/{patient_id}/safety-results", response_model=None)
async def record_safety_result(
    request: Request, patient_id: RecordId, actor: PageUser, db: DatabaseDep
) -> Response:
    posted = await posted_form(request)
    return await run_in_threadpool(_save, request, db, actor, patient_id, posted)


def _save(
    request: Request, db: Database, actor: Actor, patient_id: int, posted: dict[str, str]
) -> Response:
    check(db, actor, "safety.record", entity="safety_result", patient_id=patient_id)
    check_id = posted.get("check_id", "").strip()
    chosen = _find(check_id)
    errors = safety_errors(chosen)
    if chosen is None:
        errors.add("check_id", "Check: choose one of the checks offered.")
    else:
        values = parse_values(chosen, posted, errors)
        errors.require(posted, "observed_on")
        errors.limit(posted, "note", REASON_LENGTH)
        data = {
            "check_id": chosen.id,
            "observed_on": posted.get("observed_on", "").strip() or None,
            "values": values,
            "note": posted.get("note") or None,
        }
        body = None if errors else validated(errors, SafetyResultInput, data)
        if body is not None:
            try:
                safety.record_safety_result(
                    db, actor, patient_id, body, clock=clinic_clock_for(request)
                )
            except InvalidInput as error:
                errors.add_error(error)
    if errors:
        return _form_page(
            request, db, actor, patient_id, check_id, values=posted, errors=errors, status_code=422
        )
    return RedirectResponse(f"/patients/{patient_id}#safety", status_code=303)
