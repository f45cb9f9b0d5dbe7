"""Referral and record in the browser (PRODUCT step 1): register a patient, amend the record,
read its history of versions.

The form is a plain HTML form that works without scripts. It is turned into the patient
document of ``docs/patient-file.md`` and saved through the patient services, which validate
it, keep every earlier version, and audit the change. An amendment needs a reason and names
the version the user was looking at, so a colleague's amendment made meanwhile is never
silently replaced.

Diagnoses and comorbidities are given one per line (a name, synonym or abbreviation, a
vocabulary id, or an ICD-10-CM or ICD-11 code, with an optional note after ``|``), read by the
same resolver as screening (``ketapath.domain.vocabulary``). The form shows how each line is
read (the condition with its codes, or why not); "Check how the diagnoses are read" shows it
without saving. A line the vocabulary does not take as a condition (unknown, negated,
uncertain or ambiguous) is refused unless the user ticks that it is to be recorded as
written: such lines are reported, never ignored.
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
from ketapath.domain.errors import OutOfBounds
from ketapath.domain.patient import Assessment, Medication, Patient
from ketapath.domain.vocabulary import resolve
from ketapath.knowledge.clinical import knowledge
from ketapath.services import patients
from ketapath.services.errors import Conflict, InvalidInput
from ketapath.services.patients import PatientRecord
from ketapath.services.permissions import Actor
from ketapath.services.unit import check
from ketapath.services.validation import REASON_LENGTH
from ketapath.store.db import Database
from ketapath.web.forms import (
    NUMBER_LENGTH,
    FormErrors,
    date_limits,
    max_length,
    rule_message,
    shown,
)
from ketapath.web.pages import PageRoute, PageUser, clinic_clock_for, posted_form, render, templates
from ketapath.web.patient_pages import coded_items, patient_context, read_diagnosis

router = APIRouter(route_class=PageRoute, include_in_schema=False)

# The simple fields of the form, as named in the patient document.
TEXT_FIELDS = (
    "name",
    "birth_date",
    "age_years",
    "weight_kg",
    "weight_measured_on",
    "height_cm",
    "gp",
    "referrer",
    "zip_code",
)
CHOICE_FIELDS = ("sex", "pregnancy", "consent", "laterality")
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
    "laterality": (
        Choice("unknown", "Not recorded"),
        Choice("left", "Left"),
        Choice("right", "Right"),
        Choice("bilateral", "Both sides"),
        Choice("midline", "Midline (e.g. back, face)"),
        Choice("widespread", "Widespread"),
    ),
}


def choice_label(field: str, value: str) -> str:
    """The form's words for a stored choice ('pending' -> 'Not yet asked'); the value itself
    when the form has no words for it."""
    return next((c.label for c in CHOICES.get(field, ()) if c.value == value), value)


templates.env.globals["choice_label"] = choice_label


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


MEDICATION_LABELS = {
    "name": "Medicine",
    "dose": "Dose",
    "unit": "Unit",
    "frequency": "How often",
    "route": "Route",
    "daily_dose": "Amount taken per day",
    "indication": "What it is for",
}


def record_labels(values: dict[str, str]) -> dict[str, str]:
    """The form's words for each of its fields, in the form's order (the error summary's)."""
    labels = {
        "name": "Name",
        "birth_date": "Date of birth",
        "age_years": "Age",
        "sex": "Sex",
        "weight_kg": "Weight",
        "weight_measured_on": "Weighed on",
        "height_cm": "Height",
        "pregnancy": "Pregnancy",
        "consent": "Consent to infusion",
        "gp": "Primary care practitioner (GP)",
        "referrer": "Referred by",
        "zip_code": "ZIP code",
        "diagnoses": "Diagnoses",
        "comorbidities": "Comorbidities",
        "laterality": "Side of the pain",
        "allergies": "Allergies",
    }
    for row in range(max(_medication_rows(values), BLANK_MEDICATION_ROWS)):
        for column in MEDICATION_COLUMNS:
            labels[f"med_{column}_{row}"] = f"{MEDICATION_LABELS[column]} in medicine row {row + 1}"
    for name, _path, label in TRISTATE_FIELDS:
        labels[f"fact_{name}"] = label
    labels["fact_central_sensitisation_evidence"] = "Evidence of central sensitisation"
    labels["fact_expectancy"] = "The patient's expectancy"
    labels["fact_goals"] = "Goals and indicators of success"
    labels["purpose"] = "Purpose of the infusion"
    labels["reason"] = "Reason for the amendment"
    return labels


def _line_of(values: dict[str, str], field: str, index: int, separator: str) -> int:
    """The line of a textarea that gave the ``index``-th item (empty lines give none)."""
    filled = [
        number
        for number, line in enumerate(values.get(field, "").splitlines(), start=1)
        if line.partition(separator)[0].strip()
    ]
    return filled[index] if index < len(filled) else index + 1


_ITEM_PATH = re.compile(r"^(diagnoses|comorbidities|allergies|medications)\[(\d+)\](?:\.(\w+))?")
_LIST_WORDS = {"diagnoses": "Diagnosis", "comorbidities": "Comorbidity", "allergies": "Allergy"}


def record_errors(values: dict[str, str]) -> FormErrors:
    """The record form's problems: a document path (``medications[1].dose``) is shown at the
    form's field (``med_dose_2``: empty rows are skipped), a line of a text area by its line."""
    rows = filled_rows(values)

    def where(path: str) -> str:
        item = _ITEM_PATH.match(path)
        if item and item.group(1) == "medications":
            index = int(item.group(2))
            column = item.group(3) if item.group(3) in MEDICATION_COLUMNS else "name"
            return f"med_{column}_{rows[index]}" if index < len(rows) else ""
        if item:
            return item.group(1)
        top = path.split(".")[0].split("[")[0]
        if top == "assessment":
            return f"fact_{path.split('.')[-1]}"
        return top if top in errors.labels else ""

    def label(path: str, field: str) -> str:
        item = _ITEM_PATH.match(path)
        if item and item.group(1) in _LIST_WORDS:
            separator = ":" if item.group(1) == "allergies" else "|"
            line = _line_of(values, item.group(1), int(item.group(2)), separator)
            return f"{_LIST_WORDS[item.group(1)]} on line {line}"
        return errors.label(field)

    errors = FormErrors(record_labels(values), where=where, root="patient", path_label=label)
    return errors


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


def _medication_rows(posted: dict[str, str]) -> int:
    try:
        rows = int(posted.get("med_rows", "0"))
    except ValueError:
        rows = 0
    return max(0, min(rows, MAX_MEDICATION_ROWS))


def document_from_form(posted: dict[str, str], errors: FormErrors | None = None) -> dict[str, Any]:
    """The patient document the form describes (validated afterwards by the service).

    Empty fields are left out, so the document's defaults apply ("not known"), never a zero.
    A medicine row is kept when any of its cells is filled, so a dose without a name is
    reported rather than dropped. A number that is not one is added to ``errors`` and left out
    (the default: the form's own ``record_errors``).
    """
    errors = errors if errors is not None else record_errors(posted)
    document: dict[str, Any] = {}
    for name in (
        "name",
        "birth_date",
        "weight_measured_on",
        "gp",
        "referrer",
        "zip_code",
        *CHOICE_FIELDS,
    ):
        value = posted.get(name, "").strip()
        if value:
            document[name] = value
    for name in ("age_years", "weight_kg", "height_cm"):
        number = errors.number(posted, name)
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
            amount = errors.number(posted, f"med_{column}_{index}")
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
    """Diagnosis and comorbidity lines not taken as a condition: (field, line, text)."""
    kb = knowledge()
    out = []
    for field in ("diagnoses", "comorbidities"):
        for index, item in enumerate(document.get(field, [])):
            if resolve(item["code"], kb).condition is None:
                out.append((field, index, item["code"]))
    return out


def readings(values: dict[str, str]) -> list[dict[str, Any]]:
    """How each diagnosis and comorbidity line of the form is read."""
    out = []
    for field in ("diagnoses", "comorbidities"):
        for index, item in enumerate(_coded(values, field)):
            out.append(
                {
                    "field": field,
                    "line": index + 1,
                    "code": item["code"],
                    **read_diagnosis(item["code"]),
                }
            )
    return out


def check_codes(document: dict[str, Any], posted: dict[str, str], errors: FormErrors) -> None:
    """Lines the vocabulary does not take as a condition are problems of their text area,
    unless the user ticked that they are to be recorded as written."""
    if posted.get("accept_unknown_codes"):
        return
    for field in ("diagnoses", "comorbidities"):
        lines = [
            f"line {_line_of(posted, field, index, '|')} (“{shown(text)}”)"
            for f, index, text in unknown_codes(document)
            if f == field
        ]
        if lines:
            errors.add(
                field,
                f"{errors.label(field)}: {', '.join(lines)} "
                f"{'is' if len(lines) == 1 else 'are'} not taken as a condition. Correct "
                f"{'it' if len(lines) == 1 else 'them'} (a name or abbreviation, an ICD-10-CM or "
                "ICD-11 code, or an id from the vocabulary below; negated, uncertain or "
                "ambiguous wording is not a diagnosis), or tick “Record codes the vocabulary "
                "does not know” to record it as written.",
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


def vocabulary_rows() -> list[dict[str, str]]:
    return [
        {
            "id": c.id,
            "name": c.name,
            "codes": ", ".join(c.icd10cm),
            "icd11": ", ".join(c.icd11),
            "also": ", ".join(c.abbreviations),
        }
        for c in knowledge().conditions.entries
    ]


def form_limits() -> dict[str, int]:
    """``maxlength`` of the form's text fields: the lengths the record accepts."""
    return {
        "name": max_length(Patient, "name"),
        "gp": max_length(Patient, "gp"),
        "referrer": max_length(Patient, "referrer"),
        "zip_code": max_length(Patient, "zip_code"),
        "number": NUMBER_LENGTH,
        "med_name": max_length(Medication, "name"),
        "med_unit": max_length(Medication, "unit"),
        "med_frequency": max_length(Medication, "frequency"),
        "med_route": max_length(Medication, "route"),
        "med_indication": max_length(Medication, "indication"),
        "note": max_length(Assessment, "goals"),
        "reason": REASON_LENGTH,
    }


def _form_page(
    request: Request,
    *,
    values: dict[str, str],
    context: dict[str, Any],
    errors: FormErrors | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    rows = max(_medication_rows(values), BLANK_MEDICATION_ROWS)
    context.update(
        {
            "values": values,
            "errors": errors,
            "med_rows": rows,
            "medication_columns": MEDICATION_COLUMNS,
            "medication_fields": [
                [f"med_{column}_{row}" for column in MEDICATION_COLUMNS] for row in range(rows)
            ],
            "choices": CHOICES,
            "tristate_fields": TRISTATE_FIELDS,
            "purposes": PURPOSES,
            "vocabulary": vocabulary_rows(),
            "readings": readings(values),
            "limits": form_limits(),
            "dates": date_limits(clinic_clock_for(request).today()),
            "unknown": (
                unknown_codes({f: _coded(values, f) for f in ("diagnoses", "comorbidities")})
                if errors
                else []
            ),
        }
    )
    return render(request, "record_form.html", context, status_code=status_code)


def _more_rows(values: dict[str, str]) -> dict[str, str]:
    """The same form with more empty medicine rows (the 'more rows' button; no script)."""
    rows = _medication_rows(values) + BLANK_MEDICATION_ROWS
    return {**values, "med_rows": str(min(rows, MAX_MEDICATION_ROWS))}


def checked_document(
    request: Request, posted: dict[str, str], *, amending: bool = False
) -> tuple[dict[str, Any], FormErrors]:
    """The document the form describes and every problem of the form at once: what only the
    form knows (a required field, a number that is not one, a line the vocabulary does not
    take), then everything the record's validation finds."""
    errors = record_errors(posted)
    errors.require(posted, "name")
    if not posted.get("birth_date", "").strip() and not posted.get("age_years", "").strip():
        no_age = OutOfBounds("give age_years or birth_date", kind="no_age")
        errors.add("birth_date", rule_message(no_age, errors.label("birth_date")))
    if amending:
        errors.require(posted, "reason")
        errors.limit(posted, "reason", REASON_LENGTH)
    document = document_from_form(posted, errors)
    check_codes(document, posted, errors)
    try:
        patients.validate_document(document, clinic_clock_for(request).today())
    except InvalidInput as error:
        errors.add_error(error)
    return document, errors


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
    if posted.get("check_diagnoses"):
        return _form_page(request, values=posted, context={"record": None})
    document, errors = checked_document(request, posted)
    if not errors:
        try:
            record = patients.create_patient(db, actor, document, clock=clinic_clock_for(request))
        except InvalidInput as error:
            errors.add_error(error)
    if errors:
        return _form_page(
            request, values=posted, context={"record": None}, errors=errors, status_code=422
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
    if posted.get("check_diagnoses"):
        return _form_page(request, values=posted, context=context)
    document, errors = checked_document(request, posted, amending=True)
    expected_version = record_id(posted.get("expected_version", ""))
    if expected_version is None:  # a version number has the bound of a record id
        errors.add(
            "",
            "The form does not say which version of the record it amends: reload the page "
            "and enter the changes again.",
        )
    status_code = 422
    if not errors and expected_version is not None:
        _keep_names(document, context["record"].document)
        try:
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
            errors.add_error(error)
            status_code = error.status_code
    if errors:
        return _form_page(
            request, values=posted, context=context, errors=errors, status_code=status_code
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
