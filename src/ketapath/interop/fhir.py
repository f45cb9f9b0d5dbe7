"""A patient's record as a FHIR Bundle, and a Bundle's Patient, Condition and
MedicationStatement resources back as a patient record (docs/fhir.md).

**Version.** Every resource is built for, and validated against, **FHIR R4B (4.3.0)** with the
models of the ``fhir.resources`` library (``fhir.resources.R4B``): that library has no R4
(4.0.1) models since version 7 (R5 is its default, R4B and STU3 are sub-packages), and its
6.x releases, which had R4, need pydantic 1. R4B changed none of the resources used here
from R4, so the Bundle uses only elements that R4 has too; the tests also check it against
the official FHIR R4 JSON schema (``fhir.schema.json``). The Bundle says so: ``meta.tag`` names
the FHIR version (system ``http://hl7.org/fhir/FHIR-version``, code ``4.3.0``).

**Pure.** No database and no clock: the services gather the facts (``PatientFacts``) and pass
the time of the export. Codes come from the knowledge base: diagnoses from the vocabulary
(``conditions.yaml``: ICD-10-CM, ICD-11 MMS, SNOMED CT), medicines from ``medicines.yaml``
(ATC; no RxNorm code is recorded there), observations from ``fhir_codes.yaml`` (LOINC, UCUM).
A diagnosis or a medicine that the vocabulary does not read is exported as text only, with
the note "not recognised: check by hand" (never dropped, never given a guessed code).

**Identifiers.** Each resource's id is a name-based UUID of ketapath's numbers for it
(``patient-12``, ``condition-12-d0``) and its ``fullUrl`` is ``urn:uuid:`` with that id, so the
same record exports the same Bundle; references between entries use the ``fullUrl``. Values
that FHIR has no element for use ketapath's own namespace ``urn:ketapath:`` (not a
registered one): the patient number, an age without a birth date, a medicine's daily dose,
a diagnosis's name as written, whether a condition is a diagnosis or a comorbidity.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from ketapath.domain.medicines import recognise
from ketapath.domain.patient import Patient
from ketapath.domain.session_events import VitalSigns
from ketapath.domain.session_view import SessionView
from ketapath.domain.vocabulary import Resolution, resolve
from ketapath.knowledge.clinical import Knowledge
from ketapath.knowledge.fhir import FhirCodes, ObservationCode
from ketapath.knowledge.instruments import Instrument
from ketapath.knowledge.medicines import MedicineVocabulary

FHIR_VERSION = "4.3.0"
FHIR_RELEASE = "R4B"
MEDIA_TYPE = "application/fhir+json"
# The MIME type with FHIR's version parameter (FHIR http.html, "fhirVersion" parameter).
CONTENT_TYPE = f"{MEDIA_TYPE}; fhirVersion=4.3"
FHIR_VERSION_SYSTEM = "http://hl7.org/fhir/FHIR-version"

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD11 = "http://id.who.int/icd/release/11/mms"
SNOMED = "http://snomed.info/sct"
ATC = "http://www.whocc.no/atc"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"

NAMESPACE = "urn:ketapath"
PATIENT_ID_SYSTEM = f"{NAMESPACE}:patient"
CONDITION_ROLE = f"{NAMESPACE}:condition-role"
EXT_AGE_YEARS = f"{NAMESPACE}:fhir:age-years"
EXT_DAILY_DOSE = f"{NAMESPACE}:fhir:daily-dose"
EXT_DIAGNOSIS_NAME = f"{NAMESPACE}:fhir:diagnosis-name"
QUESTIONNAIRE = f"{NAMESPACE}:questionnaire"
_UUIDS = uuid.uuid5(uuid.NAMESPACE_URL, NAMESPACE)

NOT_RECOGNISED = "not recognised: check by hand"
# Units ketapath records and their UCUM codes; a count of a dose form ("tablets") has none and
# keeps its words only (Quantity.unit without a code).
UCUM_CODES = {
    "g": "g",
    "mg": "mg",
    "mcg": "ug",
    "ug": "ug",
    "µg": "ug",
    "μg": "ug",
    "ng": "ng",
    "kg": "kg",
    "ml": "mL",
    "mL": "mL",
    "l": "L",
    "L": "L",
    "mg/h": "mg/h",
    "mcg/h": "ug/h",
    "ug/h": "ug/h",
    "mg/d": "mg/d",
    "mg/day": "mg/d",
    "mcg/d": "ug/d",
    "mcg/day": "ug/d",
    "unit": "[U]",
    "units": "[U]",
    "U": "[U]",
}
ROUTES = {"iv": "intravenous", "sc": "subcutaneous"}


# ------------------------------------------------------------------ the facts exported


@dataclass(frozen=True)
class AssessmentFacts:
    """One current assessment: the answers as given and the score as stored."""

    id: int
    instrument_id: str
    answers: dict[str, Any]
    score: dict[str, Any] | None
    administered_at: datetime
    label: str | None = None  # baseline, post-session, follow-up
    order_id: int | None = None
    timepoint_days: int | None = None


@dataclass(frozen=True)
class OrderFacts:
    """A physician's signed course (``course``: the course as signed)."""

    id: int
    status: str  # signed | cancelled
    course: dict[str, Any]
    signed_at: datetime
    signed_by: str | None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None


@dataclass(frozen=True)
class SessionFacts:
    """A session of a course and its chart replayed at the time of the export."""

    id: int
    order_id: int
    session_number: int
    scheduled_on: date
    chart: SessionView


@dataclass(frozen=True)
class DecisionFacts:
    """The physician's decision after a course: repeat, change protocol or stop."""

    order_id: int
    decision: str
    reason: str
    decided_at: datetime
    next_protocol_id: str | None = None


@dataclass(frozen=True)
class PatientFacts:
    """Everything a Bundle holds about one patient, as ketapath keeps it."""

    patient_id: int
    document: dict[str, Any]  # the current version of the record (validated JSON)
    recorded_at: datetime  # when that version was written
    assessments: Sequence[AssessmentFacts] = ()
    orders: Sequence[OrderFacts] = ()
    sessions: Sequence[SessionFacts] = ()
    decisions: Sequence[DecisionFacts] = ()
    follow_up_days: Sequence[int] = ()


@dataclass
class _Builder:
    """The entries of a Bundle being built, with the patient's reference."""

    patient_id: int
    kb: Knowledge
    codes: FhirCodes
    instruments: dict[str, Instrument]
    entries: list[dict[str, Any]] = field(default_factory=list)

    def add(self, resource: dict[str, Any]) -> dict[str, str]:
        """Append ``resource`` and answer a reference to it. Its ``id`` (made from ketapath's
        numbers) becomes the UUID of its ``fullUrl``, so that the two agree."""
        url = full_url(safe_id(resource["id"]))
        resource["id"] = url.removeprefix("urn:uuid:")
        self.entries.append({"fullUrl": url, "resource": resource})
        return {"reference": url}

    def rid(self, kind: str, *parts: object) -> str:
        return safe_id("-".join([kind, str(self.patient_id), *(str(p) for p in parts)]))

    @property
    def patient(self) -> dict[str, str]:
        return {"reference": full_url(f"patient-{self.patient_id}")}


def safe_id(text: str) -> str:
    """``text`` as a FHIR id (letters, digits, '-' and '.', at most 64 characters)."""
    return re.sub(r"[^A-Za-z0-9.-]", "-", text)[:64]


def full_url(resource_id: str) -> str:
    """The ``fullUrl`` of a resource made from ketapath's numbers (``patient-12``): a UUID
    named by it (the same record, the same UUID)."""
    return f"urn:uuid:{uuid.uuid5(_UUIDS, resource_id)}"


def instant(moment: datetime) -> str:
    """A FHIR dateTime/instant with its offset (ketapath stores UTC)."""
    return moment.isoformat(timespec="seconds")


def _coding(system: str, code: str, display: str = "") -> dict[str, str]:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def quantity(value: float | Decimal, unit: str) -> dict[str, Any]:
    """A Quantity: ``unit`` as ketapath wrote it, with its UCUM code when it has one."""
    out: dict[str, Any] = {"value": value, "unit": unit}
    code = UCUM_CODES.get(unit.strip())
    if code is not None:
        out.update({"system": UCUM, "code": code})
    return out


def _ucum(value: float | Decimal, code: ObservationCode) -> dict[str, Any]:
    return {"value": value, "unit": code.unit.text, "system": UCUM, "code": code.unit.ucum}


def _note(*texts: str) -> list[dict[str, str]]:
    return [{"text": t} for t in texts if t]


# ------------------------------------------------------------------ the record


def patient_resource(patient_id: int, patient: Patient) -> dict[str, Any]:
    """The Patient: number, name, sex, birth date (or age), GP."""
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": f"patient-{patient_id}",
        "identifier": [{"system": PATIENT_ID_SYSTEM, "value": str(patient_id)}],
        "gender": patient.sex,
    }
    if patient.name:
        resource["name"] = [{"text": patient.name}]
    if patient.birth_date is not None:
        resource["birthDate"] = patient.birth_date.isoformat()
    elif patient.age_years is not None:
        resource["extension"] = [{"url": EXT_AGE_YEARS, "valueDecimal": patient.age_years}]
    if patient.gp:
        resource["generalPractitioner"] = [{"display": patient.gp}]
    return resource


def _body_observations(b: _Builder, patient: Patient, recorded_at: datetime) -> None:
    """Weight and height of the record as vital-sign Observations."""
    when = (
        patient.weight_measured_on.isoformat()
        if patient.weight_measured_on is not None
        else instant(recorded_at)
    )
    for key, value in (("weight_kg", patient.weight_kg), ("height_cm", patient.height_cm)):
        if value is None:
            continue
        code = b.codes.body(key)
        resource = _observation(b, b.rid("body", key), code, "vital-signs", when)
        resource["valueQuantity"] = _ucum(value, code)
        b.add(resource)


def condition_code(text: str, resolution: Resolution) -> tuple[dict[str, Any], bool]:
    """A diagnosis as a CodeableConcept (text as written, codes of its vocabulary entry) and
    whether it was recognised. A code written by the clinician is kept as written; otherwise
    each code system gives its code where the entry lists exactly one (two listed codes, such
    as upper and lower limb, are alternatives, not the condition itself)."""
    concept: dict[str, Any] = {"text": text}
    condition = resolution.condition
    if condition is None:
        return concept, False
    codings: list[dict[str, str]] = []
    if resolution.matched_by == "icd10cm":
        codings.append(_coding(ICD10CM, text.strip().upper(), condition.name))
    elif resolution.matched_by == "icd11":
        codings.append(_coding(ICD11, text.strip().upper(), condition.name))
    else:
        for system, listed in (
            (ICD10CM, condition.icd10cm),
            (ICD11, condition.icd11),
            (SNOMED, condition.snomed_ct),
        ):
            if len(listed) == 1 and len(listed[0]) > 1:  # "O" stands for a whole chapter
                codings.append(_coding(system, listed[0], condition.name))
    if codings:
        concept["coding"] = codings
    return concept, True


def condition_resource(
    b: _Builder, item: dict[str, Any], role: str, position: int
) -> dict[str, Any]:
    """A diagnosis or comorbidity of the record as a Condition."""
    text = str(item["code"])
    concept, recognised = condition_code(text, resolve(text, b.kb))
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": b.rid("condition", f"{role[0]}{position}"),
        "category": [
            {"coding": [_coding(CONDITION_CATEGORY, "problem-list-item", "Problem List Item")]},
            {"coding": [_coding(CONDITION_ROLE, role)]},
        ],
        "code": concept,
        "subject": b.patient,
    }
    if recognised:
        resource["clinicalStatus"] = {"coding": [_coding(CONDITION_CLINICAL, "active", "Active")]}
    if item.get("name"):
        resource["extension"] = [{"url": EXT_DIAGNOSIS_NAME, "valueString": item["name"]}]
    notes = _note(item.get("note") or "", "" if recognised else NOT_RECOGNISED)
    if notes:
        resource["note"] = notes
    return resource


def allergy_resource(b: _Builder, allergy: dict[str, Any], position: int) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "AllergyIntolerance",
        "id": b.rid("allergy", position),
        "code": {"text": allergy["substance"]},
        "patient": b.patient,
    }
    if allergy.get("reaction"):
        resource["reaction"] = [{"manifestation": [{"text": allergy["reaction"]}]}]
    return resource


def medicine_code(name: str, vocab: MedicineVocabulary) -> tuple[dict[str, Any], str]:
    """A medicine's name as a CodeableConcept with its ATC codes, and a note when it is not
    recognised (or is a combination without a single ATC code)."""
    concept: dict[str, Any] = {"text": name}
    found = recognise(name, vocab)
    if not found.recognised:
        return concept, NOT_RECOGNISED
    if found.product is not None and found.product.atc:
        concept["coding"] = [_coding(ATC, found.product.atc, found.label)]
        return concept, ""
    if len(found.ingredients) > 1:
        what = " + ".join(found.ingredients)
        return concept, f"combination of {what}: no single ATC code recorded"
    ingredient = vocab.ingredient(found.ingredients[0])
    concept["coding"] = [_coding(ATC, code, ingredient.name) for code in ingredient.atc]
    return concept, ""


def _dose_text(medicine: dict[str, Any]) -> str:
    parts = []
    if medicine.get("dose") is not None:
        parts.append(f"{medicine['dose']:g} {medicine.get('unit') or ''}".strip())
    parts += [medicine.get("frequency") or "", medicine.get("route") or ""]
    if medicine.get("daily_dose") is not None:
        parts.append(f"({medicine['daily_dose']:g} {medicine.get('unit') or ''} a day)")
    return " ".join(p for p in parts if p)


def dosage(medicine: dict[str, Any]) -> dict[str, Any] | None:
    """The dose of a current medicine as a Dosage (None when nothing about it is known)."""
    out: dict[str, Any] = {}
    text = _dose_text(medicine)
    if text:
        out["text"] = text
    if medicine.get("frequency"):
        out["timing"] = {"code": {"text": medicine["frequency"]}}
    if medicine.get("route"):
        out["route"] = {"text": medicine["route"]}
    if medicine.get("dose") is not None:
        out["doseAndRate"] = [{"doseQuantity": quantity(medicine["dose"], medicine["unit"])}]
    if medicine.get("daily_dose") is not None:
        daily = quantity(medicine["daily_dose"], medicine["unit"])
        out["extension"] = [{"url": EXT_DAILY_DOSE, "valueQuantity": daily}]
    return out or None


def medication_statement(b: _Builder, medicine: dict[str, Any], position: int) -> dict[str, Any]:
    """A current medicine of the record as a MedicationStatement (status active)."""
    concept, note = medicine_code(medicine["name"], b.kb.medicines)
    resource: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "id": b.rid("medication", position),
        "status": "active",
        "medicationCodeableConcept": concept,
        "subject": b.patient,
    }
    given = dosage(medicine)
    if given is not None:
        resource["dosage"] = [given]
    if medicine.get("indication"):
        resource["reasonCode"] = [{"text": medicine["indication"]}]
    if note:
        resource["note"] = _note(note)
    return resource


def _record(b: _Builder, document: dict[str, Any], recorded_at: datetime) -> list[dict[str, str]]:
    """Patient, weight and height, conditions, allergies and medicines; the references of
    the diagnoses (what a course is for)."""
    patient = Patient.model_validate(document)
    b.add(patient_resource(b.patient_id, patient))
    _body_observations(b, patient, recorded_at)
    diagnoses = []
    for role, key in (("diagnosis", "diagnoses"), ("comorbidity", "comorbidities")):
        for position, item in enumerate(document.get(key, [])):
            ref = b.add(condition_resource(b, item, role, position))
            if role == "diagnosis":
                diagnoses.append(ref)
    for position, allergy in enumerate(document.get("allergies", [])):
        b.add(allergy_resource(b, allergy, position))
    for position, medicine in enumerate(document.get("medications", [])):
        b.add(medication_statement(b, medicine, position))
    return diagnoses


# ------------------------------------------------------------------ observations


def observation_code(code: ObservationCode) -> dict[str, Any]:
    """An observation's CodeableConcept: its LOINC code where one is recorded, else text."""
    concept: dict[str, Any] = {"text": code.display}
    if code.loinc:
        concept["coding"] = [_coding(LOINC, code.loinc, code.display)]
    return concept


def _observation(
    b: _Builder, rid: str, code: ObservationCode, category: str, when: str
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "category": [{"coding": [_coding(OBSERVATION_CATEGORY, category)]}],
        "code": observation_code(code),
        "subject": b.patient,
        "effectiveDateTime": when,
    }


def vital_observations(
    b: _Builder,
    vitals: VitalSigns,
    rid: str,
    when: datetime,
    *,
    part_of: dict[str, str] | None = None,
    corrected: bool = False,
    note: str = "",
) -> None:
    """One Observation per vital sign of a set of observations (blood pressure as one panel
    of systolic and diastolic)."""
    values = vitals.values()
    for code in b.codes.entries:
        if code.kind != "vital":
            continue
        parts = [(c, v) for c in code.components if (v := values.get(c.key)) is not None]
        single = None if code.components else values.get(code.key)
        if not parts and single is None:
            continue
        resource = _observation(b, f"{rid}-{code.key}", code, "vital-signs", instant(when))
        if corrected:
            resource["status"] = "amended"
        if part_of is not None:
            resource["partOf"] = [part_of]
        if single is not None:
            resource["valueQuantity"] = _ucum(single, code)
        else:
            resource["component"] = [
                {
                    "code": {"coding": [_coding(LOINC, c.loinc, c.display)], "text": c.display},
                    "valueQuantity": _ucum(value, code),
                }
                for c, value in parts
            ]
        if note:
            resource["note"] = _note(note)
        b.add(resource)


# ------------------------------------------------------------------ assessments


def _answer(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"valueBoolean": value}
    if isinstance(value, int):
        return {"valueInteger": value}
    if isinstance(value, float):
        return {"valueDecimal": value}
    return {"valueString": str(value)}


def questionnaire_response(b: _Builder, item: AssessmentFacts) -> dict[str, Any]:
    """An assessment's answers as a QuestionnaireResponse (item labels are ketapath's short
    paraphrases, never the licensed wording of an instrument)."""
    instrument = b.instruments.get(item.instrument_id)
    answers = (item.score or {}).get("answers") or item.answers
    items = []
    for link_id, value in answers.items():
        if value is None:
            continue
        entry: dict[str, Any] = {"linkId": str(link_id), "answer": [_answer(value)]}
        if instrument is not None:
            with contextlib.suppress(KeyError):
                entry["text"] = instrument.item(str(link_id)).label
        items.append(entry)
    resource: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "id": b.rid("assessment", item.id),
        "questionnaire": f"{QUESTIONNAIRE}:{item.instrument_id}",
        "status": "completed",
        "subject": b.patient,
        "authored": instant(item.administered_at),
    }
    if items:
        resource["item"] = items
    return resource


def score_observations(b: _Builder, item: AssessmentFacts, response: dict[str, str]) -> None:
    """One Observation per scored scale of an assessment, derived from its answers."""
    instrument = b.instruments.get(item.instrument_id)
    scales = ((item.score or {}).get("subscales") or {}).values()
    for scale in scales:
        if not scale.get("scorable") or scale.get("value") is None:
            continue
        scale_id = str(scale["scale_id"])
        code = b.codes.score(item.instrument_id, scale_id)
        short = instrument.short_name if instrument is not None else item.instrument_id
        display = f"{short}: {scale.get('name') or scale_id}"
        resource: dict[str, Any] = {
            "resourceType": "Observation",
            "id": b.rid("score", item.id, scale_id),
            "status": "final",
            "category": [{"coding": [_coding(OBSERVATION_CATEGORY, "survey")]}],
            "code": observation_code(code) if code is not None else {"text": display},
            "subject": b.patient,
            "effectiveDateTime": instant(item.administered_at),
            "valueQuantity": {
                "value": scale["value"],
                "unit": "score",
                "system": UCUM,
                "code": "{score}",
            },
            "derivedFrom": [response],
        }
        if code is not None:
            resource["code"]["text"] = display
        notes = []
        if scale.get("band"):
            notes.append(f"band: {scale['band']}")
        if scale.get("prorated"):
            notes.append("prorated for missing items")
        if item.label:
            notes.append(f"course assessment: {item.label}")
        if notes:
            resource["note"] = _note("; ".join(notes))
        b.add(resource)


# ------------------------------------------------------------------ courses and sessions

PROCEDURE_STATUS = {
    "scheduled": "preparation",
    "checked_in": "preparation",
    "running": "in-progress",
    "paused": "in-progress",
    "stopped": "stopped",
    "completed": "completed",
    "observation": "in-progress",
    "discharged": "completed",
    "cancelled": "not-done",
    "did_not_attend": "not-done",
}
ADMINISTRATION_STATUS = {"running": "in-progress", "paused": "on-hold", "stopped": "stopped"}
ACTIVITY_STATUS = {
    "preparation": "scheduled",
    "in-progress": "in-progress",
    "stopped": "stopped",
    "completed": "completed",
    "not-done": "cancelled",
}


def _session_text(session: dict[str, Any], route: str) -> str:
    steps = ", then ".join(
        f"{s.get('rate_mg_per_h', 0):g} mg/h for "
        f"{s.get('end_min', 0) - s.get('start_min', 0):g} min"
        for s in session.get("steps", [])
    )
    bolus = f"bolus {session['bolus_mg']:g} mg, then " if session.get("bolus_mg") else ""
    return (
        f"Session {session.get('session')}: {bolus}{steps or 'no infusion'} "
        f"({ROUTES.get(route, route)}); total {session.get('total_mg', 0):g} mg"
    )


def ketamine_request(
    b: _Builder, order: OrderFacts, diagnoses: list[dict[str, str]]
) -> dict[str, Any]:
    """A signed course as the MedicationRequest of its ketamine: one dosage instruction per
    session, as the physician signed it."""
    course = order.course
    route = str(course.get("route", "iv"))
    concept, _ = medicine_code("ketamine", b.kb.medicines)
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": b.rid("order", order.id),
        "identifier": [{"system": f"{NAMESPACE}:order", "value": str(order.id)}],
        "status": "cancelled" if order.status == "cancelled" else "active",
        "intent": "order",
        "medicationCodeableConcept": concept,
        "subject": b.patient,
        "authoredOn": instant(order.signed_at),
        "dosageInstruction": [
            {
                "sequence": int(s.get("session", i + 1)),
                "text": _session_text(s, route),
                "route": {"text": ROUTES.get(route, route)},
                "doseAndRate": [{"doseQuantity": quantity(float(s.get("total_mg", 0)), "mg")}],
            }
            for i, s in enumerate(course.get("sessions", []))
        ],
    }
    if order.signed_by:
        resource["requester"] = {"display": order.signed_by}
    if diagnoses:
        resource["reasonReference"] = diagnoses
    notes = [f"protocol: {course.get('protocol_name') or course.get('protocol_id', '')}"]
    notes.append(f"course total {float(course.get('course_total_mg', 0)):g} mg")
    if order.cancel_reason:
        notes.append(f"cancelled: {order.cancel_reason}")
    resource["note"] = _note("; ".join(notes))
    return resource


def adjunct_request(
    b: _Builder, order: OrderFacts, adjunct: dict[str, Any], position: int
) -> dict[str, Any]:
    """A medicine ordered with the infusion (midazolam, clonidine ...) as a MedicationRequest."""
    concept, note = medicine_code(str(adjunct.get("drug", "")), b.kb.medicines)
    unit = str(adjunct.get("unit") or "mg")
    text = (
        f"{adjunct.get('dose', 0):g} {unit} {adjunct.get('route', '')} {adjunct.get('timing', '')}"
    ).strip()
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": b.rid("order", order.id, f"adjunct{position}"),
        "status": "cancelled" if order.status == "cancelled" else "active",
        "intent": "order",
        "medicationCodeableConcept": concept,
        "subject": b.patient,
        "authoredOn": instant(order.signed_at),
        "dosageInstruction": [
            {
                "text": text + (" as needed" if adjunct.get("prn") else ""),
                "asNeededBoolean": bool(adjunct.get("prn")),
                "route": {"text": str(adjunct.get("route") or "")},
                "doseAndRate": [{"doseQuantity": quantity(float(adjunct.get("dose", 0)), unit)}],
            }
        ],
    }
    if not resource["dosageInstruction"][0]["route"]["text"]:
        del resource["dosageInstruction"][0]["route"]
    if note:
        resource["note"] = _note(note)
    return resource


def procedure(
    b: _Builder, item: SessionFacts, plan: dict[str, str], diagnoses: list[dict[str, str]]
) -> dict[str, Any]:
    """An infusion session as a Procedure: its state, when the infusion ran, its course."""
    chart = item.chart
    status = PROCEDURE_STATUS[chart.state]
    resource: dict[str, Any] = {
        "resourceType": "Procedure",
        "id": b.rid("session", item.id),
        "identifier": [{"system": f"{NAMESPACE}:session", "value": str(item.id)}],
        "basedOn": [plan],
        "status": status,
        "code": {"text": "Ketamine infusion session"},
        "subject": b.patient,
    }
    if chart.dose.started_at is not None:
        period = {"start": instant(chart.dose.started_at)}
        if chart.dose.ended_at is not None:
            period["end"] = instant(chart.dose.ended_at)
        resource["performedPeriod"] = period
    if diagnoses:
        resource["reasonReference"] = diagnoses
    if chart.cancelled_reason:
        resource["statusReason"] = {"text": chart.cancelled_reason}
    resource["note"] = _note(
        f"session {item.session_number} of order {item.order_id}, scheduled "
        f"{item.scheduled_on.isoformat()}; state at export: {chart.state.replace('_', ' ')}"
    )
    return resource


def ketamine_administration(
    b: _Builder, item: SessionFacts, part_of: dict[str, str], request: dict[str, str], route: str
) -> dict[str, Any] | None:
    """The ketamine a session delivered, from the chart (rate x time + boluses, exact to
    1e-9 mg), as a MedicationAdministration; None when nothing was given."""
    chart, dose = item.chart, item.chart.dose
    first_bolus = chart.boluses[0].at if chart.boluses else None
    start = dose.started_at or first_bolus
    if start is None:
        return None
    concept, _ = medicine_code("ketamine", b.kb.medicines)
    ended = dose.ended_at is not None
    status = ADMINISTRATION_STATUS.get(chart.state, "completed" if ended else "in-progress")
    effective: dict[str, Any] = (
        {"effectivePeriod": {"start": instant(start), "end": instant(dose.ended_at)}}
        if dose.ended_at is not None
        else {"effectiveDateTime": instant(start)}
    )
    exact = Decimal(dose.delivered_mg_exact)
    return {
        "resourceType": "MedicationAdministration",
        "id": b.rid("administration", item.id),
        "status": status,
        "medicationCodeableConcept": concept,
        "subject": b.patient,
        **effective,
        "partOf": [part_of],
        "request": request,
        "dosage": {
            "text": (
                f"{dose.delivered_mg_exact} mg delivered: infusion {dose.infusion_mg:g} mg and "
                f"boluses {dose.bolus_mg:g} mg; {dose.running_minutes:g} min running, "
                f"{dose.paused_minutes:g} min paused; {dose.infused_ml:g} mL infused"
            ),
            "route": {"text": ROUTES.get(route, route)},
            "dose": {"value": float(exact), "unit": "mg", "system": UCUM, "code": "mg"},
        },
        "note": _note(
            "Computed by ketapath from the session's chart (every rate, pause and bolus as "
            "charted), never typed."
        ),
    }


def adjunct_administrations(b: _Builder, item: SessionFacts, part_of: dict[str, str]) -> None:
    for record in item.chart.adjuncts:
        concept, note = medicine_code(record.drug, b.kb.medicines)
        resource: dict[str, Any] = {
            "resourceType": "MedicationAdministration",
            "id": b.rid("administration", item.id, f"adjunct{record.seq}"),
            "status": "completed",
            "medicationCodeableConcept": concept,
            "subject": b.patient,
            "effectiveDateTime": instant(record.at),
            "partOf": [part_of],
            "dosage": {
                "route": {"text": record.route},
                "dose": quantity(record.dose, record.unit),
            },
        }
        if note:
            resource["note"] = _note(note)
        b.add(resource)


def _session_observations(b: _Builder, item: SessionFacts, part_of: dict[str, str]) -> None:
    chart = item.chart
    if chart.check_in is not None:
        check_in = chart.check_in
        rid = b.rid("baseline", item.id)
        vital_observations(
            b, check_in.baseline, rid, check_in.at, part_of=part_of, note="baseline at check-in"
        )
        code = b.codes.score("nrs", "total")
        if code is not None:
            pain = _observation(b, f"{rid}-pain", code, "survey", instant(check_in.at))
            pain["partOf"] = [part_of]
            pain["valueQuantity"] = _ucum(check_in.baseline_pain_nrs, code)
            pain["note"] = _note("pain now (0-10) at check-in")
            b.add(pain)
    for point in chart.vitals:
        vital_observations(
            b,
            point,
            b.rid("vitals", item.id, point.seq),
            point.at,
            part_of=part_of,
            corrected=point.corrected,
        )


def care_plan(
    b: _Builder,
    order: OrderFacts,
    activities: list[dict[str, Any]],
    sessions: Sequence[SessionFacts],
    facts: PatientFacts,
    diagnoses: list[dict[str, str]],
) -> dict[str, Any]:
    """A course as a CarePlan: its orders, its sessions, its follow-up assessments and the
    decision after it."""
    decision = next((d for d in facts.decisions if d.order_id == order.id), None)
    status = "revoked" if order.status == "cancelled" else "completed" if decision else "active"
    resource: dict[str, Any] = {
        "resourceType": "CarePlan",
        "id": b.rid("careplan", order.id),
        "status": status,
        "intent": "plan",
        "title": f"Ketamine infusion course: {order.course.get('protocol_name') or ''}".strip(),
        "subject": b.patient,
        "created": instant(order.signed_at),
    }
    days = sorted(s.scheduled_on for s in sessions)
    if days:
        resource["period"] = {"start": days[0].isoformat(), "end": days[-1].isoformat()}
    if diagnoses:
        resource["addresses"] = diagnoses
    done = {
        a.timepoint_days
        for a in facts.assessments
        if a.order_id == order.id and a.label == "follow-up"
    }
    follow_ups = [
        {
            "detail": {
                "status": "completed" if d in done else "not-started",
                "description": f"Follow-up assessment {d} days after the last session",
            }
        }
        for d in facts.follow_up_days
    ]
    resource["activity"] = activities + follow_ups
    if decision is not None:
        words = f"Decision after the course: {decision.decision}"
        if decision.next_protocol_id:
            words += f" (next protocol {decision.next_protocol_id})"
        resource["note"] = _note(f"{words}; {decision.reason}")
    return resource


def _course(
    b: _Builder, order: OrderFacts, facts: PatientFacts, diagnoses: list[dict[str, str]]
) -> None:
    """A course: its requests, its care plan, and each session with what it gave and what
    was observed."""
    request = b.add(ketamine_request(b, order, diagnoses))
    activities: list[dict[str, Any]] = [{"reference": request}]
    for position, adjunct in enumerate(order.course.get("adjuncts", [])):
        activities.append({"reference": b.add(adjunct_request(b, order, adjunct, position))})
    sessions = sorted(
        (s for s in facts.sessions if s.order_id == order.id), key=lambda s: s.session_number
    )
    plan_ref = {"reference": full_url(b.rid("careplan", order.id))}
    route = str(order.course.get("route", "iv"))
    later: list[tuple[SessionFacts, dict[str, Any]]] = []
    for item in sessions:
        made = procedure(b, item, plan_ref, diagnoses)
        activities.append(
            {
                "outcomeReference": [{"reference": full_url(made["id"])}],
                "detail": {
                    "status": ACTIVITY_STATUS[made["status"]],
                    "description": f"Infusion session {item.session_number}",
                    "scheduledString": item.scheduled_on.isoformat(),
                },
            }
        )
        later.append((item, made))
    b.add(care_plan(b, order, activities, sessions, facts, diagnoses))
    for item, made in later:
        part_of = b.add(made)
        given = ketamine_administration(b, item, part_of, request, route)
        if given is not None:
            b.add(given)
        adjunct_administrations(b, item, part_of)
        _session_observations(b, item, part_of)


# ------------------------------------------------------------------ the Bundle


def bundle_meta() -> dict[str, Any]:
    """The Bundle's statement of the FHIR version it was validated against (a tag of FHIR's
    own version code system; no versioned profile, which a validator of another release
    would try and fail to resolve)."""
    return {
        "tag": [
            {
                "system": FHIR_VERSION_SYSTEM,
                "code": FHIR_VERSION,
                "display": f"FHIR {FHIR_RELEASE} ({FHIR_VERSION})",
            }
        ],
    }


def export_bundle(
    facts: PatientFacts,
    *,
    exported_at: datetime,
    kb: Knowledge,
    codes: FhirCodes,
    instruments: Iterable[Instrument],
) -> dict[str, Any]:
    """The patient's record as a FHIR R4B Bundle of type ``collection`` (JSON data).

    ``exported_at`` is the Bundle's timestamp; a weight without a date of weighing is dated
    by when the record's version was written (``facts.recorded_at``).
    The result is not yet validated: see :func:`validate_bundle`.
    """
    b = _Builder(facts.patient_id, kb, codes, {i.id: i for i in instruments})
    diagnoses = _record(b, facts.document, facts.recorded_at)
    for item in facts.assessments:
        response = b.add(questionnaire_response(b, item))
        score_observations(b, item, response)
    for order in facts.orders:
        _course(b, order, facts, diagnoses)
    bundle: dict[str, Any] = fhir_strings(
        {
            "resourceType": "Bundle",
            "id": f"patient-{facts.patient_id}-record",
            "meta": bundle_meta(),
            "type": "collection",
            "timestamp": instant(exported_at),
            "entry": b.entries,
        }
    )
    return bundle


_ODD_SPACE = re.compile(r"[^\S \r\n\t]")


def fhir_strings(value: Any) -> Any:
    """``value`` with every string made a FHIR string: whitespace other than space, tab and
    line breaks (a no-break space, a line separator) becomes a space, and an element whose
    text is empty, or that is left empty, is left out (FHIR has no empty elements)."""
    if isinstance(value, str):
        return _ODD_SPACE.sub(" ", value)
    if isinstance(value, list):
        return [item for item in map(fhir_strings, value) if item not in EMPTY]
    if isinstance(value, dict):
        cleaned = {key: fhir_strings(item) for key, item in value.items()}
        return {key: item for key, item in cleaned.items() if item not in EMPTY}
    return value


EMPTY: tuple[Any, ...] = ("", {}, [])


# ------------------------------------------------------------------ validation


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a Bundle: where (``entry[2].resource.birthDate``) and what."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class InvalidBundle(ValueError):
    """A Bundle that is not valid FHIR R4B, or that ketapath cannot read as a record.
    ``problems`` names every problem found, each with where it is."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        first = self.problems[0] if self.problems else Problem("bundle", "not readable")
        more = len(self.problems) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more > 0 else ""
        super().__init__(f"{first}{suffix}")


def _where(prefix: str, loc: Sequence[int | str]) -> str:
    out = prefix
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _problems(model: Any, data: Any, where: str) -> list[Problem]:
    from pydantic import ValidationError

    try:
        model.model_validate(data)
    except ValidationError as error:
        return [
            Problem(_where(where, err["loc"]), str(err["msg"]).removeprefix("Value error, "))
            for err in error.errors()
        ]
    except (ValueError, TypeError, RecursionError) as error:
        return [Problem(where, f"not readable: {error}")]
    return []


def validate_resource(resource: Any, where: str = "resource") -> list[Problem]:
    """The problems of one resource against the FHIR R4B model of its type (none: valid)."""
    from fhir.resources.R4B import get_fhir_model_class

    if not isinstance(resource, dict):
        return [Problem(where, "a resource is a JSON object")]
    kind = resource.get("resourceType")
    try:
        model = get_fhir_model_class(str(kind))
    except (KeyError, ValueError, AttributeError, ImportError):
        return [Problem(f"{where}.resourceType", f"{kind!r} is not a FHIR R4B resource type")]
    return _problems(model, resource, where)


def validate_bundle(bundle: Any) -> list[Problem]:
    """The problems of a Bundle against the FHIR R4B models (``fhir.resources.R4B``): the
    Bundle itself, each entry, and each entry's resource as its own type."""
    from fhir.resources.R4B.bundle import BundleEntry

    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        return [Problem("bundle", "not a FHIR Bundle (resourceType must be 'Bundle')")]
    problems = validate_resource({k: v for k, v in bundle.items() if k != "entry"}, "bundle")
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        return [*problems, Problem("bundle.entry", "a list of entries")]
    for i, entry in enumerate(entries):
        where = f"entry[{i}]"
        if not isinstance(entry, dict):
            problems.append(Problem(where, "an entry is a JSON object"))
            continue
        problems += _problems(
            BundleEntry, {k: v for k, v in entry.items() if k != "resource"}, where
        )
        if "resource" in entry:
            problems += validate_resource(entry["resource"], f"{where}.resource")
    return problems


# ------------------------------------------------------------------ reading a Bundle back

# What a Bundle may say about a record that ketapath reads; everything else is reported.
READ_TYPES = ("Patient", "Condition", "AllergyIntolerance", "MedicationStatement")
CURRENT_MEDICINE = ("active", "intended", "on-hold", "unknown")
NOT_CURRENT_CONDITION = ("inactive", "remission", "resolved")
NOT_TRUE = ("refuted", "entered-in-error")
# The record's text limits (ketapath.domain.patient), checked here so that a problem names
# the entry of the Bundle it is in.
LIMITS = {"name": 200, "code": 200, "medicine": 120, "unit": 20, "frequency": 40, "route": 20}
WEIGHT_UNITS = {"kg": 1.0, "g": 0.001}
HEIGHT_UNITS = {"cm": 1.0, "m": 100.0, "mm": 0.1}


@dataclass
class ReadRecord:
    """The record fields a Bundle gives (``fields``: name, birth date or age, sex, weight,
    height, GP, diagnoses, comorbidities, allergies, medicines), and what it held that was
    not read, with why (``skipped``)."""

    fields: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


_LINE_BREAKS = re.compile(r"[\t\n\r\f\v\u2028\u2029]+")


@dataclass
class _Reader:
    kb: Knowledge
    problems: list[Problem] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def problem(self, where: str, message: str) -> None:
        self.problems.append(Problem(where, message))

    def text(self, value: Any, limit: str, where: str) -> str:
        # line breaks and tabs become spaces (a record's text is one line); every other
        # character is kept as written, so a record's text reads back exactly
        text = _LINE_BREAKS.sub(" ", str(value)).strip() if value is not None else ""
        if len(text) > LIMITS[limit]:
            self.problem(where, f"at most {LIMITS[limit]} characters (has {len(text)})")
        return text


def _list(container: Any, key: str) -> list[Any]:
    """``container[key]`` when it is a list; else empty: a missing key, or a JSON null, which
    the FHIR models accept as absent (a Patient with ``"name": null`` is valid R4B)."""
    value = container.get(key) if isinstance(container, dict) else None
    return value if isinstance(value, list) else []


def _codings(concept: Any) -> list[dict[str, Any]]:
    if not isinstance(concept, dict):
        return []
    return [c for c in _list(concept, "coding") if isinstance(c, dict)]


def concept_text(concept: Any, prefer: Sequence[str] = (ICD10CM, ICD11)) -> str:
    """What a CodeableConcept says in words: its text; else a code of ``prefer`` (a code
    ketapath reads as written); else a coding's display; else its code and system."""
    if isinstance(concept, dict) and concept.get("text"):
        return str(concept["text"])
    codings = _codings(concept)
    for system in prefer:
        for coding in codings:
            if coding.get("system") == system and coding.get("code"):
                return str(coding["code"])
    for coding in codings:
        if coding.get("display"):
            return str(coding["display"])
    for coding in codings:
        if coding.get("code"):
            return f"{coding['code']} ({coding.get('system') or 'no system'})"
    return ""


def _status(concept: Any) -> str:
    codes = [c.get("code") for c in _codings(concept)]
    return str(codes[0]) if codes else ""


def _ext(resource: dict[str, Any], url: str) -> dict[str, Any] | None:
    extensions = _list(resource, "extension")
    return next((e for e in extensions if isinstance(e, dict) and e.get("url") == url), None)


def _patient_fields(r: _Reader, patient: dict[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    gender = patient.get("gender")
    if gender not in ("male", "female"):
        r.problem(
            f"{where}.gender",
            f"ketapath's record needs sex male or female for dosing (got {gender!r}): "
            "record this patient by hand",
        )
    out["sex"] = gender
    names = [n for n in _list(patient, "name") if isinstance(n, dict)]
    official = next((n for n in names if n.get("use") == "official"), names[0] if names else None)
    if official is not None:
        words = official.get("text") or " ".join(
            [
                *(g for g in _list(official, "given") if isinstance(g, str)),
                official.get("family") or "",
            ]
        )
        out["name"] = r.text(words, "name", f"{where}.name")
    birth = patient.get("birthDate")
    age = _ext(patient, EXT_AGE_YEARS)
    if birth is not None:
        try:
            out["birth_date"] = date.fromisoformat(str(birth)).isoformat()
            out["age_years"] = None
        except ValueError:
            r.problem(f"{where}.birthDate", f"a full date is needed (got {birth!r})")
    elif age is not None and age.get("valueDecimal") is not None:
        out["age_years"] = float(age["valueDecimal"])
        out["birth_date"] = None
    else:
        r.problem(f"{where}.birthDate", "the record needs the birth date (or the age)")
    gps = [g for g in _list(patient, "generalPractitioner") if isinstance(g, dict)]
    if gps and gps[0].get("display"):
        out["gp"] = r.text(gps[0]["display"], "name", f"{where}.generalPractitioner")
    return out


def _condition(
    r: _Reader, resource: dict[str, Any], where: str
) -> tuple[str, dict[str, Any]] | None:
    """A Condition as (diagnoses | comorbidities, the record's item); None when skipped."""
    verification = _status(resource.get("verificationStatus"))
    clinical = _status(resource.get("clinicalStatus"))
    text = concept_text(resource.get("code"))
    if verification in NOT_TRUE or clinical in NOT_CURRENT_CONDITION:
        r.skipped.append(f"{where}: Condition {text!r} is {verification or clinical}")
        return None
    if not text:
        r.problem(f"{where}.code", "a Condition needs its code or text")
        return None
    item: dict[str, Any] = {"code": r.text(text, "code", f"{where}.code")}
    named = _ext(resource, EXT_DIAGNOSIS_NAME)
    if named is not None and named.get("valueString"):
        item["name"] = r.text(named["valueString"], "name", f"{where}.extension")
    notes = [
        str(n.get("text", ""))
        for n in _list(resource, "note")
        if n.get("text") and not str(n["text"]).startswith(NOT_RECOGNISED)
    ]
    if notes:
        item["note"] = "; ".join(notes)[:2000]
    roles = [
        c.get("code")
        for category in _list(resource, "category")
        for c in _codings(category)
        if c.get("system") == CONDITION_ROLE
    ]
    if roles and roles[0] in ("diagnosis", "comorbidity"):
        role = str(roles[0])
    else:  # another system's Condition: an indication of the vocabulary is a diagnosis
        found = resolve(item["code"], r.kb).condition
        role = "diagnosis" if found is not None and found.kind == "indication" else "comorbidity"
    return ("diagnoses" if role == "diagnosis" else "comorbidities"), item


def _allergy(r: _Reader, resource: dict[str, Any], where: str) -> dict[str, Any] | None:
    if _status(resource.get("verificationStatus")) in NOT_TRUE:
        r.skipped.append(f"{where}: AllergyIntolerance is refuted or entered in error")
        return None
    substance = concept_text(resource.get("code"), prefer=())
    if not substance:
        r.problem(f"{where}.code", "an allergy needs its substance (code or text)")
        return None
    item = {"substance": r.text(substance, "medicine", f"{where}.code")}
    reactions = [x for x in _list(resource, "reaction") if isinstance(x, dict)]
    if reactions and reactions[0].get("manifestation"):
        words = concept_text(reactions[0]["manifestation"][0], prefer=())
        if words:
            item["reaction"] = r.text(words, "name", f"{where}.reaction")
    return item


def _medicine_name(r: _Reader, resource: dict[str, Any], where: str, index: dict[str, Any]) -> str:
    concept = resource.get("medicationCodeableConcept")
    reference = resource.get("medicationReference")
    if concept is None and isinstance(reference, dict):
        target = index.get(str(reference.get("reference", "")))
        concept = target.get("code") if isinstance(target, dict) else None
        if concept is None and reference.get("display"):
            return str(reference["display"])
    name = concept_text(concept, prefer=())
    atc = [c.get("code") for c in _codings(concept) if c.get("system") == ATC]
    if name.endswith(f"({ATC})") and atc:  # only an ATC code: the vocabulary's ingredient
        for ingredient in r.kb.medicines.ingredients:
            if atc[0] in ingredient.atc:
                return ingredient.name
    if not name:
        r.problem(f"{where}.medication", "a MedicationStatement needs its medicine")
    return name


def _amount(quantity_data: Any, where: str, r: _Reader) -> tuple[float | None, str | None]:
    if not isinstance(quantity_data, dict) or quantity_data.get("value") is None:
        return None, None
    unit = quantity_data.get("unit") or quantity_data.get("code")
    if not unit:
        r.problem(where, "a dose needs its unit")
        return None, None
    return float(quantity_data["value"]), r.text(unit, "unit", where)


def _medicine(
    r: _Reader, resource: dict[str, Any], where: str, index: dict[str, Any]
) -> dict[str, Any] | None:
    status = str(resource.get("status", ""))
    name = _medicine_name(r, resource, where, index)
    if status not in CURRENT_MEDICINE:
        r.skipped.append(f"{where}: MedicationStatement {name!r} is {status}, not current")
        return None
    item: dict[str, Any] = {"name": r.text(name, "medicine", f"{where}.medication")}
    dosages = [d for d in _list(resource, "dosage") if isinstance(d, dict)]
    if dosages:
        given, at = dosages[0], f"{where}.dosage[0]"
        rates = [d for d in _list(given, "doseAndRate") if isinstance(d, dict)]
        if rates:
            item["dose"], item["unit"] = _amount(rates[0].get("doseQuantity"), at, r)
        daily = _ext(given, EXT_DAILY_DOSE)
        if daily is not None:
            value, unit = _amount(daily.get("valueQuantity"), f"{at}.extension", r)
            item["daily_dose"] = value
            item["unit"] = item.get("unit") or unit
        timing = given.get("timing") or {}
        if timing.get("code"):
            item["frequency"] = r.text(
                concept_text(timing["code"], prefer=()), "frequency", f"{at}.timing"
            )
        if given.get("route"):
            item["route"] = r.text(concept_text(given["route"], prefer=()), "route", f"{at}.route")
    reasons = [x for x in _list(resource, "reasonCode") if isinstance(x, dict)]
    if reasons:
        item["indication"] = r.text(concept_text(reasons[0]), "name", f"{where}.reasonCode")
    return {k: v for k, v in item.items() if v not in (None, "")}


def _body_measure(
    r: _Reader, observations: list[tuple[str, dict[str, Any]]], loinc: str, units: dict[str, float]
) -> tuple[float | None, str]:
    """The latest value of a body measure (weight, height) in the record's unit, and its day
    when the Observation gives a plain date."""
    found = []
    for where, resource in observations:
        if loinc not in {
            c.get("code") for c in _codings(resource.get("code")) if c.get("system") == LOINC
        }:
            continue
        if resource.get("status") in ("entered-in-error", "cancelled"):
            continue
        value = resource.get("valueQuantity") or {}
        unit = value.get("code") or value.get("unit")
        if value.get("value") is None or unit not in units:
            r.problem(f"{where}.valueQuantity", f"a value in {', '.join(units)} is needed")
            continue
        when = str(resource.get("effectiveDateTime") or "")
        found.append((when, float(value["value"]) * units[unit], where))
    if not found:
        return None, ""
    when, value, _ = max(found, key=lambda f: f[0])
    return value, when if len(when) == 10 else ""


def _index(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Each resource by its fullUrl and by ``Type/id``, for references."""
    index: dict[str, Any] = {}
    for entry in entries:
        resource = entry.get("resource")
        if not isinstance(resource, dict):
            continue
        if entry.get("fullUrl"):
            index[str(entry["fullUrl"])] = resource
        if resource.get("id"):
            index[f"{resource['resourceType']}/{resource['id']}"] = resource
    return index


def read_bundle(bundle: Any, kb: Knowledge) -> ReadRecord:
    """The record a Bundle describes: its one Patient, the Conditions (diagnoses and
    comorbidities), AllergyIntolerances and current MedicationStatements, and the latest body
    weight and height Observations (LOINC 29463-7, 8302-2). Everything else is listed in
    ``skipped``, never silently dropped.

    Raises :class:`InvalidBundle` naming every problem: not valid FHIR R4B, not exactly one
    Patient, a sex or birth date the record cannot hold, text longer than the record keeps.
    """
    problems = validate_bundle(bundle)
    if problems:
        raise InvalidBundle(problems)
    r = _Reader(kb)
    entries = [
        e
        for e in _list(bundle, "entry")
        if isinstance(e, dict) and isinstance(e.get("resource"), dict)
    ]
    index = _index(entries)
    by_type: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for i, entry in enumerate(_list(bundle, "entry")):
        if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
            resource = entry["resource"]
            by_type.setdefault(resource["resourceType"], []).append(
                (f"entry[{i}].resource", resource)
            )
    patients = by_type.get("Patient", [])
    if len(patients) != 1:
        raise InvalidBundle([Problem("bundle", f"one Patient is needed (found {len(patients)})")])
    out = ReadRecord()
    out.fields = _patient_fields(r, patients[0][1], patients[0][0])
    out.fields.update({"diagnoses": [], "comorbidities": [], "allergies": [], "medications": []})
    for where, resource in by_type.get("Condition", []):
        read = _condition(r, resource, where)
        if read is not None:
            out.fields[read[0]].append(read[1])
    for where, resource in by_type.get("AllergyIntolerance", []):
        allergy = _allergy(r, resource, where)
        if allergy is not None:
            out.fields["allergies"].append(allergy)
    for where, resource in by_type.get("MedicationStatement", []):
        medicine = _medicine(r, resource, where, index)
        if medicine is not None:
            out.fields["medications"].append(medicine)
    observations = by_type.get("Observation", [])
    weight, weighed_on = _body_measure(r, observations, "29463-7", WEIGHT_UNITS)
    height, _ = _body_measure(r, observations, "8302-2", HEIGHT_UNITS)
    if weight is not None:  # a weight without a plain date has no date of weighing
        out.fields["weight_kg"] = weight
        out.fields["weight_measured_on"] = weighed_on or None
    if height is not None:
        out.fields["height_cm"] = height
    if r.problems:
        raise InvalidBundle(r.problems)
    body = {"29463-7", "8302-2"}
    unread = sum(
        1
        for _, o in observations
        if not body & {c.get("code") for c in _codings(o.get("code")) if c.get("system") == LOINC}
    )
    others = [f"{len(v)} {k}" for k, v in sorted(by_type.items()) if k not in READ_TYPES]
    others = [o for o in others if not o.endswith(" Observation")]
    if unread:
        others.append(f"{unread} Observation")
    if others:
        r.skipped.append(
            "not imported (ketapath imports the Patient, Conditions, AllergyIntolerances, "
            "MedicationStatements and the latest body weight and height): " + ", ".join(others)
        )
    out.skipped = r.skipped
    return out
