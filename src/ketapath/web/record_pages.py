"""Referral and record in the browser (PRODUCT step 1): register a patient, amend the record,
read its history of versions.

The form is a plain HTML form that works without scripts. It is turned into the patient
document of ``docs/patient-file.md`` and saved through the patient services, which validate
it, keep every earlier version, and audit the change. An amendment needs a reason and names
the version the user was looking at, so a colleague's amendment made meanwhile is never
silently replaced.

Diagnoses and comorbidities are given one per line (a vocabulary id, name or ICD-10-CM
code, with an optional note after ``|``). A line the vocabulary does not know is refused
unless the user ticks that the unknown code is to be recorded as written: unknown codes are
reported, never ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ketapath.api.deps import DatabaseDep
from ketapath.api.params import RecordId, record_id
from ketapath.domain.vocabulary import resolve
from ketapath.knowledge.clinical import knowledge
from ketapath.services import patients
from ketapath.services.errors import Conflict, InvalidInput, ServiceError
from ketapath.services.patients import PatientRecord
from ketapath.services.permissions import Actor
from ketapath.services.unit import check
from ketapath.store.db import Database
from ketapath.web.pages import PageRoute, PageUser, clinic_clock_for, posted_form, render
from ketapath.web.patient_pages import coded_items, patient_context

router = APIRouter(route_class=PageRoute, include_in_schema=False)

# The simple fields of the form, as named in the patient document.
TEXT_FIELDS = ("name", "birth_date", "age_years", "weight_kg", "height_cm", "gp", "referrer")
CHOICE_FIELDS = ("sex", "pregnancy", "consent")
MEDICATION_COLUMNS = ("name", "dose", "unit", "frequency", "route", "daily_dose", "indication")
# Yes / no / not known questions of the selection criteria (FPM (ANZCA) 2016, sections 2-3):
# form name,
# path in the document, label.
TRISTATE_FIELDS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    (
        "central_sensitisation",
        ("central_sensitisation",),
        "Evidence of central sensitisation",
    ),
    (
        "poor_opioid_response",
        ("opioid_context", "poor_opioid_response"),
        "Poor response to opioids",
    ),
    (
        "opioid_side_effects",
        ("opioid_context", "opioid_side_effects"),
        "Clinically significant opioid side effects",
    ),
    (
        "drug_seeking_behaviour",
        ("opioid_context", "drug_seeking_behaviour"),
        "Drug-seeking behaviour",
    ),
    (
        "multidisciplinary_care",
        ("multidisciplinary_care",),
        "Part of a multidisciplinary plan",
    ),
    ("intoxicated_today", ("intoxicated_today",), "Intoxicated today"),
    ("fasted", ("fasted",), "Fasted"),
)
ASSESSMENT_TEXTS = ("central_sensitisation_evidence", "expectancy", "goals")
PURPOSES = (
    ("pain_relief", "Pain relief"),
    ("opioid_reduction", "Opioid reduction"),
    ("multidisciplinary_plan", "Enabling a multidisciplinary plan"),
    ("quality_of_life", "Quality of life"),
)
BLANK_MEDICATION_ROWS = 3
MAX_MEDICATION_ROWS = 60


@dataclass(frozen=True)
class Choice:
    value: str
    label: str


CHOICES: dict[str, tuple[Choice, ...]] = {
    "sex": (Choice("female", "Female"), Choice("male", "Male")),
    "pregnancy": (
        Choice("unknown", "Not known"),
        Choice("not_pregnant", "Not pregnant"),
        Choice("pregnant", "Pregnant"),
        Choice("not_applicable", "Not applicable"),
    ),
    "consent": (
        Choice("pending", "Not yet asked"),
        Choice("given", "Given"),
        Choice("refused", "Refused"),
        Choice("unable", "Unable to consent"),
    ),
}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _coded_lines(items: list[Any]) -> str:
    lines = []
    for item in items or []:
        code = item.get("code", "") if isinstance(item, dict) else str(item)
        note = item.get("note", "") if isinstance(item, dict) else ""
        lines.append(f"{code} | {note}" if note else str(code))
    return "\n".join(lines)


def form_values(document: dict[str, Any]) -> dict[str, str]:
    """The form's fields filled from a stored patient document (for amending it)."""
    values = {name: _text(document.get(name)) for name in TEXT_FIELDS + CHOICE_FIELDS}
    values["diagnoses"] = _coded_lines(document.get("diagnoses", []))
    values["comorbidities"] = _coded_lines(document.get("comorbidities", []))
    values["allergies"] = "\n".join(
        f"{a.get('substance', '')}: {a['reaction']}"
        if a.get("reaction")
        else a.get("substance", "")
        for a in document.get("allergies", [])
    )
    for index, medicine in enumerate(document.get("medications", [])):
        for column in MEDICATION_COLUMNS:
            values[f"med_{column}_{index}"] = _text(medicine.get(column))
    values["med_rows"] = str(len(document.get("medications", [])) + BLANK_MEDICATION_ROWS)
    facts = document.get("assessment") or {}
    for name, path, _label in TRISTATE_FIELDS:
        value: Any = facts
        for part in path:
            value = (value or {}).get(part)
        values[f"fact_{name}"] = "" if value is None else ("yes" if value else "no")
    for name in ASSESSMENT_TEXTS:
        values[f"fact_{name}"] = _text(facts.get(name))
    for purpose, _label in PURPOSES:
        if purpose in document.get("purpose", []):
            values[f"purpose_{purpose}"] = "on"
    return values


def _number(posted: dict[str, str], key: str, field: str) -> float | None:
    raw = posted.get(key, "").strip().replace(",", ".")
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError as error:
        raise InvalidInput(f"{field}: give a number, not {raw!r}.", field=field) from error


def _coded(posted: dict[str, str], field: str) -> list[dict[str, str]]:
    items = []
    for line in posted.get(field, "").splitlines():
        code, _, note = line.partition("|")
        if code.strip():
            items.append({"code": code.strip(), "note": note.strip()})
    return items


def filled_rows(posted: dict[str, str]) -> list[int]:
    """The medicine rows of the form with something written in them (the document's order)."""
    return [
        index
        for index in range(_medication_rows(posted))
        if any(posted.get(f"med_{c}_{index}", "").strip() for c in MEDICATION_COLUMNS)
    ]


def on_form(error: InvalidInput, posted: dict[str, str]) -> InvalidInput:
    """The error with the medicine it names as the form's row (empty rows are skipped)."""
    match = re.match(r"(?:patient\.)?medications\[(\d+)\]", error.field or "")
    rows = filled_rows(posted)
    if not match or int(match.group(1)) >= len(rows):
        return error
    row = rows[int(match.group(1))]
    return InvalidInput(
        f"{error.message.rstrip('.')} (medicine row {row + 1} of the form).",
        field=f"medications[{row}]" + (error.field or "")[match.end() :],
    )


def _medication_rows(posted: dict[str, str]) -> int:
    try:
        rows = int(posted.get("med_rows", "0"))
    except ValueError:
        rows = 0
    return max(0, min(rows, MAX_MEDICATION_ROWS))


def document_from_form(posted: dict[str, str]) -> dict[str, Any]:
    """The patient document the form describes (validated afterwards by the service).

    Empty fields are left out, so the document's defaults apply ("not known"), never a zero.
    A medicine row is kept when any of its cells is filled, so a dose without a name is
    reported rather than dropped.
    """
    document: dict[str, Any] = {}
    for name in ("name", "birth_date", "gp", "referrer", *CHOICE_FIELDS):
        value = posted.get(name, "").strip()
        if value:
            document[name] = value
    for name in ("age_years", "weight_kg", "height_cm"):
        number = _number(posted, name, name)
        if number is not None:
            document[name] = number
    document["diagnoses"] = _coded(posted, "diagnoses")
    document["comorbidities"] = _coded(posted, "comorbidities")
    allergies = []
    for line in posted.get("allergies", "").splitlines():
        substance, _, reaction = line.partition(":")
        if substance.strip():
            allergies.append({"substance": substance.strip(), "reaction": reaction.strip()})
    document["allergies"] = allergies
    medications: list[dict[str, Any]] = []
    for index in filled_rows(posted):
        cells = {c: posted.get(f"med_{c}_{index}", "").strip() for c in MEDICATION_COLUMNS}
        medicine: dict[str, Any] = {
            c: v for c, v in cells.items() if v and c not in ("dose", "daily_dose")
        }
        for column in ("dose", "daily_dose"):
            amount = _number(
                posted, f"med_{column}_{index}", f"medications[{len(medications)}].{column}"
            )
            if amount is not None:
                medicine[column] = amount
        medications.append(medicine)
    document["medications"] = medications
    facts: dict[str, Any] = {}
    for name, path, _label in TRISTATE_FIELDS:
        answer = posted.get(f"fact_{name}", "")
        if answer not in ("yes", "no"):
            continue
        target = facts
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = answer == "yes"
    for name in ASSESSMENT_TEXTS:
        text = posted.get(f"fact_{name}", "").strip()
        if text:
            facts[name] = text
    document["assessment"] = facts
    document["purpose"] = [p for p, _label in PURPOSES if posted.get(f"purpose_{p}")]
    return document


def unknown_codes(document: dict[str, Any]) -> list[tuple[str, int, str]]:
    """Diagnosis and comorbidity lines the vocabulary does not know: (field, line, text)."""
    kb = knowledge()
    out = []
    for field in ("diagnoses", "comorbidities"):
        for index, item in enumerate(document.get(field, [])):
            if resolve(item["code"], kb).condition is None:
                out.append((field, index, item["code"]))
    return out


def _check_codes(document: dict[str, Any], posted: dict[str, str]) -> None:
    if posted.get("accept_unknown_codes"):
        return
    unknown = unknown_codes(document)
    if unknown:
        field, index, _ = unknown[0]
        listed = ", ".join(f"{t!r} ({f} line {i + 1})" for f, i, t in unknown)
        raise InvalidInput(
            f"{field}[{index}].code: not in the vocabulary: {listed}. Correct the code (an "
            "ICD-10-CM code, or a vocabulary id or name from the list below), or tick "
            "'Record codes the vocabulary does not know' to record it as written.",
            field=f"{field}[{index}].code",
        )


def _keep_names(document: dict[str, Any], previous: dict[str, Any]) -> None:
    """A diagnosis kept from the previous version keeps the name it was recorded with."""
    for field in ("diagnoses", "comorbidities"):
        names = {
            item.get("code"): item.get("name", "")
            for item in previous.get(field, [])
            if isinstance(item, dict) and item.get("name")
        }
        for item in document.get(field, []):
            if item["code"] in names:
                item["name"] = names[item["code"]]


def form_field(error_field: str | None) -> str:
    """The form's name for the document field an error names (``patient.weight_kg``)."""
    return (error_field or "").removeprefix("patient.")


def vocabulary_rows() -> list[dict[str, str]]:
    return [
        {"id": c.id, "name": c.name, "codes": ", ".join(c.icd10cm)}
        for c in knowledge().conditions.entries
    ]


def _form_page(
    request: Request,
    *,
    values: dict[str, str],
    context: dict[str, Any],
    error: ServiceError | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    rows = max(_medication_rows(values), BLANK_MEDICATION_ROWS)
    context.update(
        {
            "values": values,
            "error": error,
            "error_field": form_field(error.field) if error else "",
            "med_rows": rows,
            "medication_columns": MEDICATION_COLUMNS,
            "choices": CHOICES,
            "tristate_fields": TRISTATE_FIELDS,
            "purposes": PURPOSES,
            "vocabulary": vocabulary_rows(),
            "unknown": (
                unknown_codes({f: _coded(values, f) for f in ("diagnoses", "comorbidities")})
                if error
                else []
            ),
        }
    )
    return render(request, "record_form.html", context, status_code=status_code)


def _more_rows(values: dict[str, str]) -> dict[str, str]:
    """The same form with more empty medicine rows (the 'more rows' button; no script)."""
    rows = _medication_rows(values) + BLANK_MEDICATION_ROWS
    return {**values, "med_rows": str(min(rows, MAX_MEDICATION_ROWS))}


@router.get("/patients/new", response_class=HTMLResponse)
def new_patient(request: Request, actor: PageUser, db: DatabaseDep) -> HTMLResponse:
    check(db, actor, "patient.create", entity="patient")
    values = {"med_rows": str(BLANK_MEDICATION_ROWS + 1)}
    return _form_page(request, values=values, context={"record": None})


@router.post("/patients", response_model=None)
async def create_patient(request: Request, actor: PageUser, db: DatabaseDep) -> Response:
    posted = await posted_form(request)
    return await run_in_threadpool(_create, request, db, actor, posted)


def _create(request: Request, db: Database, actor: Actor, posted: dict[str, str]) -> Response:
    check(db, actor, "patient.create", entity="patient")
    if posted.get("more_rows"):
        return _form_page(request, values=_more_rows(posted), context={"record": None})
    try:
        document = document_from_form(posted)
        _check_codes(document, posted)
        record = patients.create_patient(db, actor, document, clock=clinic_clock_for(request))
    except InvalidInput as error:
        return _form_page(
            request,
            values=posted,
            context={"record": None},
            error=on_form(error, posted),
            status_code=error.status_code,
        )
    return RedirectResponse(f"/patients/{record.id}", status_code=303)


@router.get("/patients/{patient_id}/edit", response_class=HTMLResponse)
def edit_patient(
    request: Request, patient_id: RecordId, actor: PageUser, db: DatabaseDep
) -> HTMLResponse:
    check(db, actor, "patient.amend", entity="patient", patient_id=patient_id)
    context = patient_context(db, actor, patient_id)
    record: PatientRecord = context["record"]
    values = form_values(record.document)
    values["expected_version"] = str(record.version)
    return _form_page(request, values=values, context=context)


@router.post("/patients/{patient_id}/record", response_model=None)
async def amend_patient(
    request: Request, patient_id: RecordId, actor: PageUser, db: DatabaseDep
) -> Response:
    posted = await posted_form(request)
    return await run_in_threadpool(_amend, request, db, actor, patient_id, posted)


def _amend(
    request: Request, db: Database, actor: Actor, patient_id: int, posted: dict[str, str]
) -> Response:
    check(db, actor, "patient.amend", entity="patient", patient_id=patient_id)
    context = patient_context(db, actor, patient_id)
    if posted.get("more_rows"):
        return _form_page(request, values=_more_rows(posted), context=context)
    try:
        expected_version = record_id(posted.get("expected_version", ""))
        if expected_version is None:  # a version number has the bound of a record id
            raise InvalidInput(
                "expected_version: the form does not say which version it amends; reload it.",
                field="expected_version",
            )
        document = document_from_form(posted)
        _check_codes(document, posted)
        _keep_names(document, context["record"].document)
        patients.amend_patient(
            db,
            actor,
            patient_id,
            document,
            reason=posted.get("reason", ""),
            expected_version=expected_version,
            clock=clinic_clock_for(request),
        )
    except (InvalidInput, Conflict) as error:
        shown = on_form(error, posted) if isinstance(error, InvalidInput) else error
        return _form_page(
            request, values=posted, context=context, error=shown, status_code=error.status_code
        )
    return RedirectResponse(f"/patients/{patient_id}", status_code=303)


def changes(before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    """The document fields that differ between two versions, in the document's order."""
    if before is None:
        return []
    keys = [k for k in after if k != "id"] + [k for k in before if k not in after]
    return [key for key in keys if before.get(key) != after.get(key)]


@router.get("/patients/{patient_id}/history", response_class=HTMLResponse)
def record_history(
    request: Request, patient_id: RecordId, actor: PageUser, db: DatabaseDep
) -> HTMLResponse:
    context = patient_context(db, actor, patient_id)
    versions = patients.patient_history(db, actor, patient_id)
    shown = []
    previous: dict[str, Any] | None = None
    for record in versions:
        shown.append(
            {
                "record": record,
                "changed": changes(previous, record.document),
                "diagnoses": coded_items(record.document.get("diagnoses", [])),
            }
        )
        previous = record.document
    context["versions"] = list(reversed(shown))
    return render(request, "record_history.html", context)
