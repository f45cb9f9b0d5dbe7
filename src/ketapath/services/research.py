"""De-identified views for researchers: coded values and research codes only, never free text.

A patient appears under a research code (``research_code``: a keyed hash of the clinic's
random pseudonym, which clinicians search by and which is therefore never shown to
researchers); age is given in ten-year bands (90 and over pooled as "90 or older", as in the
HIPAA Safe Harbor method, 45 CFR 164.514(b)(2)); times are days from the patient's
registration, not calendar dates. The research export (``services.research_export``) uses
the same codes, bands and days.

Medicines appear as the medicine vocabulary's ingredient ids and ATC codes (and product id),
diagnoses as the diagnosis vocabulary's ids with their ICD-10-CM and ICD-11 codes (or a
well-formed ICD-10-CM code the vocabulary does not hold). Whatever the vocabularies do not
recognise is free text (a name or a phone number typed into the field, a note) and is
withheld: only its count is shown ("3 medicines withheld: not recognised").
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import date
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select

from ketapath.config import Settings, get_settings
from ketapath.domain.medicines import recognise
from ketapath.domain.research import age_band, research_code
from ketapath.domain.vocabulary import resolve
from ketapath.knowledge.clinical import Knowledge, knowledge
from ketapath.services import audit
from ketapath.services.assessments import current_assessments
from ketapath.services.clock import ClinicClock, clinic_clock
from ketapath.services.patients import latest_versions_query
from ketapath.services.permissions import Actor
from ketapath.services.unit import action
from ketapath.store.db import Database
from ketapath.store.models import Patient, PatientVersion


class ResearchMedicine(BaseModel):
    """A recognised medicine as coded values: what is in it, never the name as typed."""

    ingredients: list[str] = Field(description="Ingredient ids of the medicine vocabulary.")
    atc: list[str] = Field(description="WHO ATC codes of the ingredients.")
    product: str | None = Field(
        default=None, description="Product id of the medicine vocabulary, if a product."
    )


class ResearchDiagnosis(BaseModel):
    """A recognised diagnosis as coded values: the vocabulary id and its codes."""

    condition: str | None = Field(
        description="Diagnosis vocabulary id; None for a valid ICD-10-CM code outside it."
    )
    icd10cm: list[str]
    icd11: list[str] = []


CODE_DESCRIPTION = (
    "The patient's research code: the same in every research view and export made with the "
    "server's secret key; never the clinic's pseudonym or patient number."
)


class DeidentifiedPatient(BaseModel):
    patient_code: str = Field(description=CODE_DESCRIPTION)
    sex: str
    age_band: str | None
    weight_kg: float | None
    height_cm: float | None
    diagnoses: list[ResearchDiagnosis]
    medications: list[ResearchMedicine]
    diagnoses_withheld: int = Field(
        default=0, ge=0, description="Diagnoses not recognised: free text, withheld."
    )
    medicines_withheld: int = Field(
        default=0, ge=0, description="Medicines not recognised: free text, withheld."
    )


class DeidentifiedAssessment(BaseModel):
    patient_code: str = Field(description=CODE_DESCRIPTION)
    instrument_id: str
    day: int = Field(description="Days from the patient's registration (day 0).")
    total: float | None
    score: dict[str, Any] | None


# The key of the research codes is derived from the server's secret, with its own label, so
# that the code of a patient cannot be computed from anything a researcher holds.
_KEY_LABEL = b"ketapath research code v1"


def research_key(settings: Settings | None = None) -> bytes:
    """The key of the patients' research codes: HMAC-SHA-256 of a fixed label under the
    server's ``KETAPATH_SECRET_KEY``. The same secret gives the same codes in every export;
    a server that makes a random secret at start (none set) gives new codes after a restart."""
    secret = (settings or get_settings()).secret_key.get_secret_value().encode("utf-8")
    return hmac.new(secret, _KEY_LABEL, hashlib.sha256).digest()


def age_years_on(document: dict[str, Any], today: date) -> float | None:
    """The age in whole years on ``today`` from the record's birth date, else its recorded
    age (None if neither)."""
    birth = document.get("birth_date")
    if birth:
        born = date.fromisoformat(birth)
        return today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    age = document.get("age_years")
    return float(age) if age is not None else None


def coded_diagnosis(text: str, kb: Knowledge) -> ResearchDiagnosis | None:
    """The coded form of one written diagnosis, or None (free text: withheld)."""
    r = resolve(text, kb)
    if r.condition is not None:
        codes = [text.strip().upper()] if r.matched_by == "icd10cm" else []
        return ResearchDiagnosis(
            condition=r.condition.id,
            icd10cm=codes or list(r.condition.icd10cm),
            icd11=list(r.condition.icd11),
        )
    if r.matched_by == "unknown-code":
        return ResearchDiagnosis(condition=None, icd10cm=[text.strip().upper()])
    return None


def coded_medicine(name: str, kb: Knowledge) -> ResearchMedicine | None:
    """The coded form of one written medicine, or None (free text: withheld)."""
    rec = recognise(name, kb.medicines)
    if not rec.recognised:
        return None
    return ResearchMedicine(
        ingredients=list(rec.ingredients),
        atc=[code for i in rec.ingredients for code in kb.medicines.ingredient(i).atc],
        product=rec.product.id if rec.product is not None else None,
    )


def deidentify(
    code: str, document: dict[str, Any], today: date, kb: Knowledge | None = None
) -> DeidentifiedPatient:
    """The record ``document`` as a researcher may see it, under the research ``code``."""
    kb = kb or knowledge()
    items = document.get("diagnoses", [])
    written = [str(i["code"]) if isinstance(i, dict) else str(i) for i in items]
    diagnoses = [coded_diagnosis(text, kb) for text in written]
    medicines = [
        coded_medicine(str(m.get("name", "")), kb) for m in document.get("medications", [])
    ]
    return DeidentifiedPatient(
        patient_code=code,
        sex=document["sex"],
        age_band=age_band(age_years_on(document, today)),
        weight_kg=document.get("weight_kg"),
        height_cm=document.get("height_cm"),
        diagnoses=[d for d in diagnoses if d is not None],
        medications=[m for m in medicines if m is not None],
        diagnoses_withheld=sum(d is None for d in diagnoses),
        medicines_withheld=sum(m is None for m in medicines),
    )


def research_patients(
    db: Database,
    actor: Actor,
    *,
    clock: ClinicClock | None = None,
    settings: Settings | None = None,
) -> list[DeidentifiedPatient]:
    """Every patient's latest record, de-identified; ages (in bands) on the clinic's today."""
    today = (clock or clinic_clock()).today()
    key = research_key(settings)
    with action(db, actor, "research.read", entity="patient") as session:
        rows = session.execute(
            latest_versions_query()
            .add_columns(Patient.pseudonym)
            .join(Patient, Patient.id == PatientVersion.patient_id)
            .order_by(Patient.pseudonym)
        ).all()
        audit.record(
            session,
            actor,
            "research.patients",
            entity="patient",
            detail={"count": len(rows)},
        )
        kb = knowledge()
        views = [
            deidentify(research_code(key, pseudonym), version.document, today, kb)
            for version, pseudonym in rows
        ]
        return sorted(views, key=lambda view: view.patient_code)


def research_assessments(
    db: Database,
    actor: Actor,
    *,
    clock: ClinicClock | None = None,
    settings: Settings | None = None,
) -> list[DeidentifiedAssessment]:
    """Every current assessment, under the patients' research codes, on days from their
    registration (in the clinic's time zone)."""
    clock = clock or clinic_clock()
    key = research_key(settings)
    with action(db, actor, "research.read", entity="assessment") as session:
        out: list[DeidentifiedAssessment] = []
        for patient in session.scalars(select(Patient).order_by(Patient.pseudonym)):
            for row in current_assessments(session, patient.id):
                registered = clock.date_of(patient.created_at)
                out.append(
                    DeidentifiedAssessment(
                        patient_code=research_code(key, patient.pseudonym),
                        instrument_id=row.instrument_id,
                        day=(clock.date_of(row.administered_at) - registered).days,
                        total=row.total,
                        score=row.score,
                    )
                )
        audit.record(
            session,
            actor,
            "research.assessments",
            entity="assessment",
            detail={"count": len(out)},
        )
        return sorted(out, key=lambda row: (row.patient_code, row.day))
