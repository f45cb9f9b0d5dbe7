"""De-identified views for researchers: coded values and pseudonyms only, never free text.

A patient appears under a stable random pseudonym; age is given in ten-year bands (90 and
over pooled, as in the HIPAA Safe Harbor method, 45 CFR 164.514(b)(2)); times are days from
the patient's registration, not calendar dates.

Medicines appear as the medicine vocabulary's ingredient ids and ATC codes (and product id),
diagnoses as the diagnosis vocabulary's ids with their ICD-10-CM and ICD-11 codes (or a
well-formed ICD-10-CM code the vocabulary does not hold). Whatever the vocabularies do not
recognise is free text (a name or a phone number typed into the field, a note) and is
withheld: only its count is shown ("3 medicines withheld: not recognised").
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select

from ketapath.domain.medicines import recognise
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


class DeidentifiedPatient(BaseModel):
    pseudonym: str
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
    pseudonym: str
    instrument_id: str
    day: int
    total: float | None
    score: dict[str, Any] | None


def age_band(age_years: float | None) -> str | None:
    if age_years is None:
        return None
    if age_years >= 90:
        return "90+"
    low = int(age_years // 10) * 10
    return f"{low}-{low + 9}"


def _age_years(document: dict[str, Any], today: date) -> float | None:
    birth = document.get("birth_date")
    if birth:
        born = date.fromisoformat(birth)
        return today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    age = document.get("age_years")
    return float(age) if age is not None else None


def _diagnosis(text: str, kb: Knowledge) -> ResearchDiagnosis | None:
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


def _medicine(name: str, kb: Knowledge) -> ResearchMedicine | None:
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
    pseudonym: str, document: dict[str, Any], today: date, kb: Knowledge | None = None
) -> DeidentifiedPatient:
    kb = kb or knowledge()
    items = document.get("diagnoses", [])
    written = [str(i["code"]) if isinstance(i, dict) else str(i) for i in items]
    diagnoses = [_diagnosis(text, kb) for text in written]
    medicines = [_medicine(str(m.get("name", "")), kb) for m in document.get("medications", [])]
    return DeidentifiedPatient(
        pseudonym=pseudonym,
        sex=document["sex"],
        age_band=age_band(_age_years(document, today)),
        weight_kg=document.get("weight_kg"),
        height_cm=document.get("height_cm"),
        diagnoses=[d for d in diagnoses if d is not None],
        medications=[m for m in medicines if m is not None],
        diagnoses_withheld=sum(d is None for d in diagnoses),
        medicines_withheld=sum(m is None for m in medicines),
    )


def research_patients(
    db: Database, actor: Actor, *, clock: ClinicClock | None = None
) -> list[DeidentifiedPatient]:
    """Every patient's latest record, de-identified; ages (in bands) on the clinic's today."""
    today = (clock or clinic_clock()).today()
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
        return [deidentify(pseudonym, version.document, today, kb) for version, pseudonym in rows]


def research_assessments(db: Database, actor: Actor) -> list[DeidentifiedAssessment]:
    with action(db, actor, "research.read", entity="assessment") as session:
        out: list[DeidentifiedAssessment] = []
        for patient in session.scalars(select(Patient).order_by(Patient.pseudonym)):
            for row in current_assessments(session, patient.id):
                out.append(
                    DeidentifiedAssessment(
                        pseudonym=patient.pseudonym,
                        instrument_id=row.instrument_id,
                        day=(row.administered_at.date() - patient.created_at.date()).days,
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
        return out
